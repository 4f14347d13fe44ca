//! Bad sizes and hostile values: every format answers with an error or finite work, never a panic.

use marlin_core::formats::{dequantize, quantize};
use marlin_core::{Error, QuantFormat};

#[test]
fn dequantize_rejects_wrong_sizes() {
    for f in QuantFormat::ALL {
        let (be, bb) = (f.block_elems(), f.block_bytes());
        let mut dst = vec![0f32; 2 * be];
        let short = vec![0u8; 2 * bb - 1];
        let long = vec![0u8; 2 * bb + 1];
        assert!(
            matches!(dequantize(f, &short, &mut dst), Err(Error::Shape(_))),
            "{f}"
        );
        assert!(
            matches!(dequantize(f, &long, &mut dst), Err(Error::Shape(_))),
            "{f}"
        );
        assert!(dequantize(f, &vec![0u8; 2 * bb], &mut dst).is_ok(), "{f}");
        assert!(dequantize(f, &[], &mut []).is_ok(), "{f}");
        if be > 1 {
            let mut ragged = vec![0f32; be + 1];
            let r = dequantize(f, &vec![0u8; 2 * bb], &mut ragged);
            assert!(matches!(r, Err(Error::BlockAlign { .. })), "{f}");
        }
    }
}

#[test]
fn quantize_rejects_wrong_sizes() {
    for f in QuantFormat::ALL {
        let (be, bb) = (f.block_elems(), f.block_bytes());
        let src = vec![1f32; 2 * be];
        let mut short = vec![0u8; 2 * bb - 1];
        assert!(
            matches!(quantize(f, &src, &mut short), Err(Error::Shape(_))),
            "{f}"
        );
        let mut ok = vec![0u8; 2 * bb];
        assert!(quantize(f, &src, &mut ok).is_ok(), "{f}");
        if be > 1 {
            let r = quantize(f, &src[..be + 1], &mut ok);
            assert!(matches!(r, Err(Error::BlockAlign { .. })), "{f}");
        }
    }
}

#[test]
fn hostile_values_do_not_panic() {
    let specials = [
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        -f32::MAX,
        f32::MIN_POSITIVE,
        1e-40,
        -0.0,
    ];
    for f in QuantFormat::ALL {
        let n = f.block_elems().max(32) * 2;
        let inputs = [
            vec![0f32; n],
            (0..n)
                .map(|i| specials[i % specials.len()])
                .collect::<Vec<_>>(),
            (0..n).map(|i| if i == 3 { 1e30 } else { 1e-30 }).collect(),
        ];
        for x in &inputs {
            let mut q = vec![0u8; f.row_bytes(n).unwrap()];
            quantize(f, x, &mut q).unwrap();
            let mut y = vec![0f32; n];
            dequantize(f, &q, &mut y).unwrap();
        }
        // All-zero input must come back as zeros.
        let mut q = vec![0u8; f.row_bytes(n).unwrap()];
        quantize(f, &inputs[0], &mut q).unwrap();
        let mut y = vec![1f32; n];
        dequantize(f, &q, &mut y).unwrap();
        assert!(y.iter().all(|&v| v == 0.0), "{f}: zeros do not round-trip");
    }
}
