//! Fuzz the GGUF reader: parse arbitrary bytes, and when they parse, touch every tensor
//! and run every typed getter on every key. Any panic or out-of-bounds access is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use marlin_models::gguf::GgufFile;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::from_bytes(data) else {
        return;
    };
    let _ = f.summary().to_string();
    let md = f.metadata();
    for (k, _) in md.entries() {
        let _ = (md.get_u64(k), md.get_u32(k), md.get_i64(k), md.get_f32(k));
        let _ = (md.get_str(k), md.get_bool(k), md.get_u64_array(k));
        let _ = (
            md.get_str_array(k),
            md.get_f32_array(k),
            md.get_i32_array(k),
        );
    }
    for t in f.tensors() {
        let bytes = f
            .tensor_bytes(&t.name)
            .expect("a validated tensor is readable");
        assert_eq!(bytes.len() as u64, t.nbytes);
        let sum = bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b));
        std::hint::black_box(sum);
        if let Ok(q) = f.tensor(&t.name) {
            assert_eq!(q.bytes().len(), bytes.len());
            assert_eq!(q.numel() as u64, t.numel());
            if q.numel() <= 1 << 14 {
                let _ = q.to_f32();
            }
        }
    }
});
