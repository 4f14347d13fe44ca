//! Fuzz the safetensors reader: parse arbitrary bytes and touch every tensor.

#![no_main]

use libfuzzer_sys::fuzz_target;
use marlin_models::hf::SafetensorsFile;

fuzz_target!(|data: &[u8]| {
    let Ok(f) = SafetensorsFile::from_bytes(data) else {
        return;
    };
    let names: Vec<String> = f.names().map(str::to_owned).collect();
    for name in &names {
        let raw = f.raw(name).expect("a listed tensor is readable");
        let sum = raw.data.bytes().iter().fold(0u8, |a, &b| a.wrapping_add(b));
        std::hint::black_box(sum);
        if let Ok(t) = f.tensor(name) {
            assert_eq!(t.bytes().len(), raw.data.bytes().len());
            if t.numel() <= 1 << 14 {
                let _ = t.to_f32();
            }
        }
    }
});
