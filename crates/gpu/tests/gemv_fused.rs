//! `gemv_norm` and `gemv_add` (decode GEMVs with the RMSNorm before them or the residual add
//! after them folded in) against the reference: rms_norm then matmul, and r + W x. Shapes
//! with a partial last workgroup and with more than one x tile (cols > 4096); the formats
//! cover the plain, subgroup and Dp4a bodies.

mod testkit;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::{
    norm_with_eps, read_f32, record_gemv_fused, upload_f32, Error, GemvFuse, GpuWeight, MatmulIo,
    Op, StepEncoder,
};
use testkit::{nmse, nmse_threshold, random_vec, random_weight, rng};

const FORMATS: [&str; 7] = [
    "f32",
    "f16",
    "q4_0",
    "q8_0",
    "q4_k",
    "fp4_g128",
    "int4_g128",
];

fn run(fmt: QuantFormat, rows: usize, cols: usize, norm: bool) -> f64 {
    let ctx = testkit::ctx().expect("ctx");
    let t = random_weight(fmt, rows, cols, (rows * 31 + cols) as u64);
    let dq = t.to_f32().expect("dequantize");
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let mut r = rng(cols as u64 + u64::from(norm));
    let x = random_vec(&mut r, cols);
    let gain = random_vec(&mut r, cols);
    let resid = random_vec(&mut r, rows);
    let (want, out_init) = if norm {
        let xn = reference::rms_norm(&x, &gain, 1e-5);
        (reference::matmul(&dq, &xn, rows, cols, 1), vec![0.0; rows])
    } else {
        let y = reference::matmul(&dq, &x, rows, cols, 1);
        (resid.iter().zip(&y).map(|(a, b)| a + b).collect(), resid)
    };
    let xb = upload_f32(ctx, &x).expect("x");
    let ob = upload_f32(ctx, &out_init).expect("out");
    let nb = upload_f32(ctx, &norm_with_eps(&gain, 1e-5)).expect("norm");
    let fuse = if norm {
        GemvFuse::Norm(&nb)
    } else {
        GemvFuse::Add
    };
    let mut enc = StepEncoder::new(ctx, "fused");
    record_gemv_fused(&mut enc, &w, &MatmulIo::new(&xb, &ob, 1), fuse).expect("record");
    enc.submit().expect("submit");
    let got = read_f32(ctx, &ob, 0, rows).expect("read");
    nmse(&got, &want)
}

#[test]
fn gemv_norm_and_gemv_add_match_the_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    for name in FORMATS {
        let fmt = QuantFormat::from_name(name).expect("format");
        let variant = ctx.matmul_variant(Op::Gemv, fmt);
        let tol = nmse_threshold(Op::Gemv, fmt, variant);
        for (rows, cols) in [(45, 256), (7, 4352)] {
            for norm in [true, false] {
                let e = run(fmt, rows, cols, norm);
                assert!(
                    e < tol,
                    "{name} {variant:?} {rows}x{cols} norm={norm}: nmse {e:e} (tol {tol:e})"
                );
            }
        }
    }
}

#[test]
fn fused_gemv_rejects_what_it_cannot_run() {
    let Some(ctx) = testkit::ctx() else { return };
    let (rows, cols) = (16, 64);
    let t = random_weight(QuantFormat::Q8_0, rows, cols, 3);
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let xb = upload_f32(ctx, &vec![0.5; 2 * cols]).expect("x");
    let ob = upload_f32(ctx, &vec![0.0; 2 * rows]).expect("out");
    let short = upload_f32(ctx, &vec![1.0; cols]).expect("short norm");
    let mut enc = StepEncoder::new(ctx, "bad");
    let two = MatmulIo::new(&xb, &ob, 2);
    assert!(matches!(
        record_gemv_fused(&mut enc, &w, &two, GemvFuse::Add),
        Err(Error::Shape { .. })
    ));
    let one = MatmulIo::new(&xb, &ob, 1);
    let e = record_gemv_fused(&mut enc, &w, &one, GemvFuse::Norm(&short)).unwrap_err();
    assert!(e.to_string().contains("norm buffer"), "{e}");
    // A weight stored rotated needs its input rotated first: not fusable.
    let rot = t.with_hadamard(32).expect("rotated");
    let rw = GpuWeight::upload(ctx, &rot).expect("upload rotated");
    assert!(matches!(
        record_gemv_fused(&mut enc, &rw, &one, GemvFuse::Add),
        Err(Error::Unsupported { .. })
    ));
}
