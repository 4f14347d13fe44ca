//! Dequantization against gguf-py fixtures (bit-exact) and hand-derived blocks.

use marlin_core::formats::{self, dequantize, f32_to_f16};
use marlin_core::QuantFormat;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/formats/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Bit equality, with every NaN equal to every NaN.
fn same_bits(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Formats gguf-py can dequantize (it has no Q8_1 or Q8_K dequantizer).
const GGUF_PY_FORMATS: [QuantFormat; 16] = [
    QuantFormat::F32,
    QuantFormat::F16,
    QuantFormat::BF16,
    QuantFormat::Q4_0,
    QuantFormat::Q4_1,
    QuantFormat::Q5_0,
    QuantFormat::Q5_1,
    QuantFormat::Q8_0,
    QuantFormat::Q2_K,
    QuantFormat::Q3_K,
    QuantFormat::Q4_K,
    QuantFormat::Q5_K,
    QuantFormat::Q6_K,
    QuantFormat::IQ4_NL,
    QuantFormat::IQ4_XS,
    QuantFormat::MXFP4,
];

#[test]
fn dequantize_matches_gguf_py_bit_exactly() {
    for format in GGUF_PY_FORMATS {
        let src = fixture(&format!("{}.in", format.name()));
        let want = f32s(&fixture(&format!("{}.out", format.name())));
        assert!(want.len() >= 512, "{format}: fixture too small");
        let mut got = vec![0f32; want.len()];
        dequantize(format, &src, &mut got).unwrap();
        let bad: Vec<_> = (0..want.len())
            .filter(|&i| !same_bits(got[i], want[i]))
            .collect();
        assert!(
            bad.is_empty(),
            "{format}: {} mismatches, first at {}: got {} want {}",
            bad.len(),
            bad[0],
            got[bad[0]],
            want[bad[0]]
        );
        // The fixtures must exercise real values, not just zeros.
        assert!(want.iter().filter(|v| **v != 0.0).count() > want.len() / 2);
    }
}

fn f16_bytes(x: f32) -> [u8; 2] {
    f32_to_f16(x).to_le_bytes()
}

#[test]
fn q4_0_hand_block() {
    let mut b = [0u8; 18];
    b[..2].copy_from_slice(&f16_bytes(0.5));
    for j in 0..16 {
        b[2 + j] = j as u8 | ((15 - j as u8) << 4);
    }
    let mut y = [0f32; 32];
    dequantize(QuantFormat::Q4_0, &b, &mut y).unwrap();
    for j in 0..16 {
        assert_eq!(y[j], (j as f32 - 8.0) * 0.5);
        assert_eq!(y[j + 16], (7.0 - j as f32) * 0.5);
    }
}

#[test]
fn q5_1_hand_block() {
    let mut b = [0u8; 24];
    b[..2].copy_from_slice(&f16_bytes(2.0));
    b[2..4].copy_from_slice(&f16_bytes(-1.0));
    b[4..8].copy_from_slice(&(1u32 << 31).to_le_bytes()); // fifth bit of element 31
    b[8 + 15] = 0x3F; // element 15: code 15, element 31: code 3 | 16 = 19
    let mut y = [0f32; 32];
    dequantize(QuantFormat::Q5_1, &b, &mut y).unwrap();
    assert_eq!(y[15], 15.0 * 2.0 - 1.0);
    assert_eq!(y[31], 19.0 * 2.0 - 1.0);
    assert_eq!(y[0], -1.0);
}

#[test]
fn q6_k_element_indexing() {
    // d = 1, every scale 1 except sub-block 12 (scale 3); all codes 0 (→ −32) except
    // element 200 = code 45 (→ 13). Element 200: h=1, r=72, k=2, l=8 → low nibble in the
    // high half of ql[64 + 8], high two bits in bits 4..5 of qh[32 + 8].
    let mut b = [0u8; 210];
    b[64 + 8] = 13 << 4;
    b[128 + 32 + 8] = 2 << 4;
    for s in &mut b[192..208] {
        *s = 1;
    }
    b[192 + 12] = 3;
    b[208..210].copy_from_slice(&f16_bytes(1.0));
    let mut y = [0f32; 256];
    dequantize(QuantFormat::Q6_K, &b, &mut y).unwrap();
    for (i, &v) in y.iter().enumerate() {
        let want = match i {
            200 => 39.0,
            192..=207 => -96.0,
            _ => -32.0,
        };
        assert_eq!(v, want, "element {i}");
    }
}

#[test]
fn q3_k_hand_element() {
    // Element 37: h=0, j=1, s=0, l=5 → qs[5] bits 2..3, hmask[5] bit 1; sub-block 2.
    let mut b = [0u8; 110];
    b[32 + 5] = 0b11 << 2; // q2 = 3
    b[5] = 1 << 1; // hbit set: no −4
    let mut sc = [0i8; 16];
    sc[2] = -5;
    b[96..108].copy_from_slice(&formats::q3k_pack_scales(&sc));
    b[108..110].copy_from_slice(&f16_bytes(0.25));
    let mut y = [0f32; 256];
    dequantize(QuantFormat::Q3_K, &b, &mut y).unwrap();
    assert_eq!(y[37], 0.25 * -5.0 * 3.0);
    assert_eq!(y[36], 0.25 * -5.0 * -4.0); // q2 = 0, hbit clear → −4
    assert_eq!(y[0], 0.0); // scale 0
}

#[test]
fn q8_1_and_q8_k_hand_blocks() {
    let mut b = [0u8; 36];
    b[..2].copy_from_slice(&f16_bytes(2.0));
    b[2..4].copy_from_slice(&f16_bytes(1000.0)); // s is ignored by dequantization
    for j in 0..32 {
        b[4 + j] = (j as i8 - 16) as u8;
    }
    let mut y = [0f32; 32];
    dequantize(QuantFormat::Q8_1, &b, &mut y).unwrap();
    assert!((0..32).all(|j| y[j] == (j as f32 - 16.0) * 2.0));

    let mut k = [0u8; 292];
    k[..4].copy_from_slice(&0.25f32.to_le_bytes());
    for i in 0..256 {
        k[4 + i] = (i as i32 - 128) as i8 as u8;
    }
    let mut y = [0f32; 256];
    dequantize(QuantFormat::Q8_K, &k, &mut y).unwrap();
    assert!((0..256).all(|i| y[i] == (i as f32 - 128.0) * 0.25));
}

#[test]
fn mxfp4_hand_block() {
    // e = 128 → half scale 1.0, so values are the doubled table; e = 130 → ×4.
    let mut b = [0u8; 17];
    b[0] = 130;
    for j in 0..16 {
        b[1 + j] = j as u8 | ((15 - j as u8) << 4);
    }
    let mut y = [0f32; 32];
    dequantize(QuantFormat::MXFP4, &b, &mut y).unwrap();
    for j in 0..16 {
        assert_eq!(y[j], formats::E2M1_TABLE[j] * 8.0);
        assert_eq!(y[j + 16], formats::E2M1_TABLE[15 - j] * 8.0);
    }
}

#[test]
fn multi_block_rows_decode_block_after_block() {
    // Two Q8_0 blocks with different scales: the second block's values follow the first.
    let mut b = [0u8; 68];
    b[..2].copy_from_slice(&f16_bytes(1.0));
    b[34..36].copy_from_slice(&f16_bytes(-3.0));
    b[2] = 5;
    b[36] = 5;
    let mut y = [0f32; 64];
    dequantize(QuantFormat::Q8_0, &b, &mut y).unwrap();
    assert_eq!((y[0], y[32]), (5.0, -15.0));
}
