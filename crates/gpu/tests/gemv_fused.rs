//! The fused decode GEMVs against the reference: `gemv_norm` (rms_norm then matmul),
//! `gemv_norm_out` (and the normed x it stores) and `gemv_add` (r + W x). Shapes
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

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Norm,
    NormOut,
    Add,
}

/// NMSE of the output and, for `NormOut`, of the stored normed x.
fn run(fmt: QuantFormat, rows: usize, cols: usize, mode: Mode) -> (f64, f64) {
    let ctx = testkit::ctx().expect("ctx");
    let t = random_weight(fmt, rows, cols, (rows * 31 + cols) as u64);
    let dq = t.to_f32().expect("dequantize");
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let mut r = rng(cols as u64 + mode as u64);
    let x = random_vec(&mut r, cols);
    let gain = random_vec(&mut r, cols);
    let resid = random_vec(&mut r, rows);
    let xn = reference::rms_norm(&x, &gain, 1e-5);
    let (want, out_init) = match mode {
        Mode::Norm | Mode::NormOut => (reference::matmul(&dq, &xn, rows, cols, 1), vec![0.0; rows]),
        Mode::Add => {
            let y = reference::matmul(&dq, &x, rows, cols, 1);
            (resid.iter().zip(&y).map(|(a, b)| a + b).collect(), resid)
        }
    };
    let xb = upload_f32(ctx, &x).expect("x");
    let ob = upload_f32(ctx, &out_init).expect("out");
    let nb = upload_f32(ctx, &norm_with_eps(&gain, 1e-5)).expect("norm");
    let xnb = upload_f32(ctx, &vec![f32::NAN; cols]).expect("normed x");
    let fuse = match mode {
        Mode::Norm => GemvFuse::Norm(&nb),
        Mode::NormOut => GemvFuse::NormOut {
            norm: &nb,
            xn: &xnb,
        },
        Mode::Add => GemvFuse::Add,
    };
    let mut enc = StepEncoder::new(ctx, "fused");
    record_gemv_fused(&mut enc, &w, &MatmulIo::new(&xb, &ob, 1), fuse).expect("record");
    enc.submit().expect("submit");
    let got = read_f32(ctx, &ob, 0, rows).expect("read");
    let xn_err = match mode {
        Mode::NormOut => nmse(&read_f32(ctx, &xnb, 0, cols).expect("read xn"), &xn),
        _ => 0.0,
    };
    (nmse(&got, &want), xn_err)
}

#[test]
fn gemv_norm_and_gemv_add_match_the_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    for name in FORMATS {
        let fmt = QuantFormat::from_name(name).expect("format");
        let variant = ctx.matmul_variant(Op::Gemv, fmt);
        let tol = nmse_threshold(Op::Gemv, fmt, variant);
        for (rows, cols) in [(45, 256), (7, 4352)] {
            for mode in [Mode::Norm, Mode::NormOut, Mode::Add] {
                let (e, xn) = run(fmt, rows, cols, mode);
                assert!(
                    e < tol,
                    "{name} {variant:?} {rows}x{cols} {mode:?}: nmse {e:e} (tol {tol:e})"
                );
                // The stored normed x is plain f32 arithmetic.
                assert!(xn < 1e-10, "{name} {rows}x{cols}: normed x nmse {xn:e}");
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
    let norm = upload_f32(ctx, &vec![1.0; cols + 4]).expect("norm");
    // Made directly: pooled buffers round their sizes up.
    let half = ctx
        .device
        .create_buffer(&marlin_gpu::wgpu::BufferDescriptor {
            label: Some("short normed x"),
            size: (cols * 2) as u64,
            usage: marlin_gpu::wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
    let fuse = GemvFuse::NormOut {
        norm: &norm,
        xn: &half,
    };
    let e = record_gemv_fused(&mut enc, &w, &one, fuse).unwrap_err();
    assert!(e.to_string().contains("normed x"), "{e}");
    // A weight stored rotated needs its input rotated first: not fusable.
    let rot = t.with_hadamard(32).expect("rotated");
    let rw = GpuWeight::upload(ctx, &rot).expect("upload rotated");
    assert!(matches!(
        record_gemv_fused(&mut enc, &rw, &one, GemvFuse::Add),
        Err(Error::Unsupported { .. })
    ));
}
