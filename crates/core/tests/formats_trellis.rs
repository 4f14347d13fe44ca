//! Trellis format: codebook values, bitstream states, packing, layout and dequantization.

use std::sync::Arc;

use marlin_core::formats::trellis::{
    self, decode_value, had_block, layout, pack_states, pack_tile, tile_state, Codebook,
    TrellisFormat,
};
use marlin_core::formats::trellis_code::{MUL1_SCALE, MUL1_SCALE_BITS};
use marlin_core::{QTensor, QuantFormat, TensorData};
use rand::{Rng, SeedableRng};

/// Values computed independently (Python: struct f16 halves, exact f64 sum; MUL1 via a
/// correctly rounded f32 product).
#[test]
fn codebook_values_match_independent_computation() {
    let cases: [(u16, f32, f32, u32); 5] = [
        (0x0000, 0.768_066_4, 1.843_75, 0xc05c_d693),
        (0x0001, -0.919_311_5, 0.134_521_48, 0x3f24_8bcd),
        (0x1234, -2.199_707, 1.514_282_2, 0xbf13_39b7),
        (0xFFFF, -0.158_203_13, 0.850_097_66, 0xbf26_4735),
        (0x8000, -0.498_046_88, -0.635_253_9, 0xbf5d_b447),
    ];
    for (s, inst3, mcg, mul1) in cases {
        assert_eq!(decode_value(Codebook::Inst3, s), inst3, "3inst {s:#x}");
        assert_eq!(decode_value(Codebook::Mcg, s), mcg, "mcg {s:#x}");
        assert_eq!(
            decode_value(Codebook::Mul1, s).to_bits(),
            mul1,
            "mul1 {s:#x}"
        );
    }
    // 0x8000: product 0x41EE8000, bytes sum 0x41+0xEE+0x80 = 382 → (382−510)·scale.
    assert_eq!(MUL1_SCALE.to_bits(), MUL1_SCALE_BITS);
    assert_eq!(MUL1_SCALE, 1.0f32 / 147.800_54f32);
}

#[test]
fn codebooks_are_roughly_standard_gaussian() {
    for cb in Codebook::ALL {
        let v: Vec<f64> = (0..=u16::MAX)
            .map(|s| f64::from(decode_value(cb, s)))
            .collect();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        assert!(mean.abs() < 0.02, "{cb}: mean {mean}");
        assert!((0.9..1.3).contains(&std), "{cb}: std {std}");
        if cb == Codebook::Inst3 {
            // EXL3's codebook_scale for 3INST.
            assert!((std - 1.243_71).abs() < 2e-3, "3inst std {std}");
        }
        if cb != Codebook::Mul1 {
            assert!(v.iter().all(|x| x.abs() >= 0.0 && x.abs() < 4.0));
        }
    }
}

#[test]
fn tail_biting_wrap_by_hand() {
    // K = 2: 16 words. The stream's last 16 bits are ones, its first two bits are 01.
    let mut w = [0u32; 16];
    w[15] = 0x0000_FFFF;
    w[0] = 0x4000_0000;
    // state_0 = bits [498, 512) ++ bits [0, 2) = 14 ones, 01.
    assert_eq!(tile_state(&w, 2, 0).unwrap(), 0xFFFD);
    // state_1 = bits [500, 512) ++ bits [0, 4) = 12 ones, 0100.
    assert_eq!(tile_state(&w, 2, 1).unwrap(), 0xFFF4);
    assert_eq!(tile_state(&w, 2, 7).unwrap(), 0x4000);
    assert_eq!(tile_state(&w, 2, 8).unwrap(), 0x0000);
    // The last position's window is the stream's last 16 bits.
    assert_eq!(tile_state(&w, 2, 255).unwrap(), 0xFFFF);
    assert!(tile_state(&w, 2, 256).is_err());
    assert!(tile_state(&w, 3, 0).is_err());
}

#[test]
fn packed_chunks_decode_back_to_their_states() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    for k in 2..=4u32 {
        let mask = (1u16 << k) - 1;
        let chunks: Vec<u16> = (0..256).map(|_| rng.random::<u16>() & mask).collect();
        let mut words = vec![0u32; 8 * k as usize];
        pack_tile(&chunks, k, &mut words).unwrap();
        let states: Vec<u16> = (0..256)
            .map(|t| tile_state(&words, k, t).unwrap())
            .collect();
        for t in 0..256 {
            let prev = states[(t + 255) % 256];
            assert_eq!(states[t] & mask, chunks[t], "k {k} t {t}");
            assert_eq!(states[t], ((prev << k) | chunks[t]), "k {k} t {t}");
        }
        // A path of states packs to the same words.
        let mut again = vec![0u32; words.len()];
        pack_states(&states, k, &mut again).unwrap();
        assert_eq!(again, words);
        let mut broken = states.clone();
        broken[100] ^= 0x8000;
        assert!(pack_states(&broken, k, &mut again).is_err());
        let mut bad = chunks.clone();
        bad[3] = 1 << k;
        assert!(pack_tile(&bad, k, &mut again).is_err());
        assert!(pack_tile(&chunks[..255], k, &mut again).is_err());
    }
    assert!(pack_tile(&[0; 256], 5, &mut [0; 40]).is_err());
}

#[test]
fn names_round_trip() {
    for f in QuantFormat::trellis_all() {
        assert_eq!(QuantFormat::from_name(f.name()), Some(f), "{f}");
        assert_eq!(QuantFormat::from_name(&f.to_string()), Some(f));
        assert_eq!(f.ggml_id(), None);
        assert!(!f.is_marlin() && f.is_trellis());
    }
    let t = |bits, codebook| QuantFormat::Trellis(TrellisFormat { bits, codebook });
    assert_eq!(
        QuantFormat::from_name("trellis3"),
        Some(t(3, Codebook::DEFAULT))
    );
    assert_eq!(t(3, Codebook::DEFAULT).name(), "trellis3");
    assert_eq!(
        QuantFormat::from_name("TRELLIS4_MUL1"),
        Some(t(4, Codebook::Mul1))
    );
    assert_eq!(
        QuantFormat::from_name("trellis3_mcg"),
        Some(t(3, Codebook::Mcg))
    );
    assert_eq!(
        QuantFormat::from_name("trellis2_3inst"),
        Some(t(2, Codebook::Inst3))
    );
    assert_eq!(QuantFormat::from_name("trellis5"), None);
    assert_eq!(QuantFormat::from_name("trellis3_foo"), None);
    assert_eq!(QuantFormat::trellis_all().len(), 9);
    assert_eq!(t(3, Codebook::Mcg).block_bytes(), 96);
    assert_eq!(t(2, Codebook::Mcg).bits_per_weight(), 2.0);
}

#[test]
fn layout_sizes_and_shape_errors() {
    let f = TrellisFormat::new(3, Codebook::Inst3).unwrap();
    let q = QuantFormat::Trellis(f);
    assert_eq!(
        QTensor::nbytes_for(q, &[32, 64]).unwrap(),
        2 * 4 * 96 + 4 * 64 + 4 * 32
    );
    assert_eq!(
        QTensor::nbytes_for(q, &[3, 32, 64]).unwrap(),
        3 * (2 * 4 * 96 + 4 * 64 + 4 * 32)
    );
    let lay = layout(f, 32, 64).unwrap();
    assert_eq!((lay.tiles_k, lay.suh_at, lay.svh_at), (4, 768, 1024));
    for (n, k) in [(24, 32), (32, 40), (0, 16)] {
        let e = QTensor::nbytes_for(q, &[n, k]).unwrap_err().to_string();
        assert!(e.contains("multiples of 16"), "{e}");
    }
    assert!(QTensor::nbytes_for(q, &[64]).is_err());
    assert!(TrellisFormat::new(5, Codebook::Mcg).is_err());
    assert!(q.row_bytes(64).is_err());
    assert_eq!(
        [16, 48, 96, 576, 1536, 2048].map(had_block),
        [16, 16, 32, 64, 128, 128]
    );
}

fn hadamard(b: usize, n: usize) -> Vec<f32> {
    let mut h = vec![0f32; n * n];
    let s = 1.0 / (b as f32).sqrt();
    for i in 0..n {
        for j in 0..n {
            if i / b == j / b && ((i % b) & (j % b)).count_ones().is_multiple_of(2) {
                h[i * n + j] = s;
            } else if i / b == j / b {
                h[i * n + j] = -s;
            }
        }
    }
    h
}

#[test]
fn dequantize_matches_the_matrix_definition() {
    let (n, k) = (32, 48);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for f in TrellisFormat::all() {
        let lay = layout(f, n, k).unwrap();
        let mut bytes: Vec<u8> = (0..lay.suh_at).map(|_| rng.random()).collect();
        let suh: Vec<f32> = (0..k).map(|_| rng.random_range(-1.0..1.0)).collect();
        let svh: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        for v in suh.iter().chain(&svh) {
            bytes.extend(v.to_le_bytes());
        }
        // Q from the spec: tile (tn, tk), position t ↔ row t/16, column t%16.
        let mut q = vec![0f32; n * k];
        let tw = lay.tile_bytes / 4;
        for tn in 0..n / 16 {
            for tk in 0..k / 16 {
                let at = (tn * (k / 16) + tk) * lay.tile_bytes;
                let words: Vec<u32> = bytes[at..at + lay.tile_bytes]
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                assert_eq!(words.len(), tw);
                for t in 0..256 {
                    let s = tile_state(&words, f.k(), t).unwrap();
                    q[(tn * 16 + t / 16) * k + tk * 16 + t % 16] = decode_value(f.codebook, s);
                }
            }
        }
        assert_eq!(trellis::decode_q(f, &bytes, n, k).unwrap(), q);
        let (hn, hk) = (hadamard(had_block(n), n), hadamard(had_block(k), k));
        let w = trellis::dequantize(f, &bytes, n, k).unwrap();
        for i in 0..n {
            for j in 0..k {
                let mut acc = 0f64;
                for a in 0..n {
                    for b in 0..k {
                        acc += f64::from(hn[i * n + a] * q[a * k + b] * hk[b * k + j]);
                    }
                }
                let want = acc as f32 * svh[i] * suh[j];
                assert!((w[i * k + j] - want).abs() < 1e-4, "{f:?} [{i},{j}]");
            }
        }
        let t = QTensor::new(
            QuantFormat::Trellis(f),
            vec![n, k],
            TensorData::Owned(Arc::new(bytes.clone())),
        )
        .unwrap();
        assert_eq!(t.to_f32().unwrap(), w);
        assert!(t.dequantize_row(0, &mut vec![0f32; k]).is_err());
        assert!(trellis::dequantize(f, &bytes[1..], n, k).is_err());
    }
}
