//! `gemv_norm_swiglu` (one token's gate|up GEMV with SwiGLU folded into its output) against
//! the two dispatches it replaces, `gemv_norm` then `silu_mul`: the same sums and the same
//! activation, so bit for bit up to the order of the f32 exponent. Formats cover the plain,
//! subgroup and Dp4a bodies, and the wide workgroups of tall weights; nothing past the `f`
//! outputs is written. Runs on lavapipe (testkit).

mod testkit;

use marlin_core::QuantFormat;
use marlin_gpu::{
    norm_with_eps, read_f32, record_gate_mul, record_gemv_fused, upload_f32, GateAct, GemvFuse,
    GpuWeight, MatmulIo, Span, StepEncoder,
};
use testkit::{nmse, random_vec, random_weight, rng};

/// NMSE of the fused GEMV against gemv_norm + silu_mul, for `f` outputs of `cols` inputs.
fn case(fmt: QuantFormat, f: usize, cols: usize) -> f64 {
    let ctx = testkit::ctx().expect("ctx");
    let rows = 2 * f;
    let t = random_weight(fmt, rows, cols, (rows + cols) as u64);
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let mut r = rng(f as u64);
    let x = upload_f32(ctx, &random_vec(&mut r, cols)).expect("x");
    let gain = random_vec(&mut r, cols);
    let norm = upload_f32(ctx, &norm_with_eps(&gain, 1e-5)).expect("norm");

    let gu = upload_f32(ctx, &vec![0.0; rows]).expect("gu");
    let want = upload_f32(ctx, &vec![0.0; f]).expect("want");
    let mut enc = StepEncoder::new(ctx, "reference");
    let io = MatmulIo::new(&x, &gu, 1);
    record_gemv_fused(&mut enc, &w, &io, GemvFuse::Norm(&norm)).expect("gemv_norm");
    let (g, a) = (Span::whole(&gu), Span::whole(&want));
    record_gate_mul(&mut enc, GateAct::Silu, g, a, 1, f, rows).expect("silu_mul");
    enc.submit().expect("submit");

    // One guard value past the outputs must stay NaN.
    let out = upload_f32(ctx, &vec![f32::NAN; f + 1]).expect("out");
    let mut enc = StepEncoder::new(ctx, "fused");
    let io = MatmulIo::new(&x, &out, 1);
    record_gemv_fused(&mut enc, &w, &io, GemvFuse::NormSwiglu(&norm)).expect("fused");
    assert_eq!(enc.dispatch_count(), 1);
    enc.submit().expect("submit");

    let got = read_f32(ctx, &out, 0, f + 1).expect("out");
    assert!(
        got[f].is_nan(),
        "{}: the guard past the outputs",
        fmt.name()
    );
    nmse(&got[..f], &read_f32(ctx, &want, 0, f).expect("want"))
}

#[test]
fn gemv_norm_swiglu_equals_gemv_norm_then_silu_mul() {
    if testkit::ctx().is_none() {
        return;
    }
    for name in ["f32", "f16", "q4_0", "q8_0", "q4_k"] {
        let fmt = QuantFormat::from_name(name).expect("format");
        // A partial last workgroup (40 rows), and 8,192 rows, where the tall-weight formats
        // run 64-row workgroups.
        for (f, cols) in [(20, 256), (4096, 256)] {
            let e = case(fmt, f, cols);
            eprintln!("gemv_norm_swiglu {name} f={f} cols={cols}: nmse {e:.3e}");
            assert!(e < 1e-10, "{name} f={f}: nmse {e}");
        }
    }
}

#[test]
fn gemv_norm_swiglu_rejects_split_or_odd_weights() {
    let Some(ctx) = testkit::ctx() else { return };
    let b = upload_f32(ctx, &vec![0.0; 1024]).expect("buf");
    let mut enc = StepEncoder::new(ctx, "bad");
    let odd = random_weight(QuantFormat::F32, 63, 256, 3);
    let odd = GpuWeight::upload(ctx, &odd).expect("odd");
    let io = MatmulIo::new(&b, &b, 1);
    let r = record_gemv_fused(&mut enc, &odd, &io, GemvFuse::NormSwiglu(&b));
    assert!(r.is_err(), "63 rows have no gate|up pairs");
    // Gate row i and up row i would sit in different chunks.
    let t = random_weight(QuantFormat::F32, 64, 256, 3);
    let split =
        GpuWeight::upload_chunked(ctx, &t, (16 * t.row_bytes() + 32) as u64).expect("split");
    assert!(split.chunks.len() > 1);
    let r = record_gemv_fused(&mut enc, &split, &io, GemvFuse::NormSwiglu(&b));
    assert!(r.is_err(), "a gate|up weight in chunks");
    // The output must hold the 32 activations.
    // (Pooled buffers round sizes up: this one is exactly 64 bytes.)
    let small = ctx
        .device
        .create_buffer(&marlin_gpu::wgpu::BufferDescriptor {
            label: Some("small"),
            size: 64,
            usage: marlin_gpu::wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
    let w = GpuWeight::upload(ctx, &t).expect("w");
    let io = MatmulIo::new(&b, &small, 1);
    let r = record_gemv_fused(&mut enc, &w, &io, GemvFuse::NormSwiglu(&b));
    assert!(r.is_err(), "16 floats for 32 outputs");
    assert_eq!(enc.dispatch_count(), 0);
}
