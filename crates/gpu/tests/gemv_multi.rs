//! `gemv_multi` selection and launcher rules: which op serves each token count (threshold
//! default, changed, off), equal results through GEMV-multi and GEMM, and clear errors for
//! kernels that do not fit the call. Kernel parity lives in parity.rs.

mod testkit;

use marlin_core::{reference, QuantFormat};
use marlin_gpu::registry::{matmul_op_for, GEMV_MULTI_MAX};
use marlin_gpu::{
    matmul, record_matmul_op, upload_f32, zeroed_f32, Error, GpuWeight, MatmulIo, Op, StepEncoder,
    Variant,
};
use testkit::{nmse, random_vec, random_weight, rng};

#[test]
fn token_counts_pick_gemv_multi_up_to_the_threshold() {
    assert_eq!(GEMV_MULTI_MAX, 64);
    assert_eq!(matmul_op_for(1, 8), Op::Gemv);
    for n in 2..=8 {
        assert_eq!(matmul_op_for(n, 8), Op::GemvMulti, "n = {n}");
    }
    assert_eq!(matmul_op_for(9, 8), Op::Gemm);
    assert_eq!(matmul_op_for(64, 8), Op::Gemm);
    assert_eq!(matmul_op_for(2, 0), Op::Gemm, "0 turns it off");
    assert_eq!(matmul_op_for(1, 0), Op::Gemv);
    assert_eq!(
        matmul_op_for(16, 16),
        Op::GemvMulti,
        "passes beyond 8 tokens"
    );
    assert_eq!(matmul_op_for(17, 16), Op::Gemm);
}

/// `matmul` (the device's choice) gives the reference result for every token count with
/// the threshold at its default, raised to 16 (two passes) and off (GEMM only).
#[test]
fn context_threshold_routes_and_results_agree() {
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    let (rows, cols) = (45, 320);
    let t = random_weight(QuantFormat::Q4_0, rows, cols, 5);
    let dq = t.to_f32().expect("dequantize");
    let w = GpuWeight::upload(&ctx, &t).expect("upload");
    for max in [GEMV_MULTI_MAX, 16, 0] {
        ctx.set_gemv_multi_max(max);
        assert_eq!(ctx.gemv_multi_max(), max);
        for n in [1, 2, 6, 8, 9, 13] {
            let want_op = match n {
                1 => Op::Gemv,
                n if n <= max => Op::GemvMulti,
                _ => Op::Gemm,
            };
            assert_eq!(ctx.matmul_op(n), want_op, "max {max}, n {n}");
            let x = random_vec(&mut rng(n as u64), n * cols);
            let want = reference::matmul(&dq, &x, rows, cols, n);
            let got = matmul(&ctx, &w, &x, n).expect("matmul");
            let e = nmse(&got, &want);
            // Dp4a (8-bit activations) where the device picks it for q4_0.
            assert!(e < 1e-4, "max {max}, n {n}: nmse {e:e}");
        }
    }
}

#[test]
fn mismatched_kernels_are_errors() {
    let Some(ctx) = testkit::ctx() else { return };
    let t = random_weight(QuantFormat::Q8_0, 8, 64, 9);
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let x = upload_f32(ctx, &[0.5; 3 * 64]).expect("x");
    let out = zeroed_f32(ctx, 3 * 8).expect("out");
    let io = MatmulIo::new(&x, &out, 3);
    let mut enc = StepEncoder::new(ctx, "errors");
    let e = record_matmul_op(&mut enc, &w, &io, Op::Gemv, Variant::Plain);
    assert!(
        matches!(e, Err(Error::Shape { .. })),
        "gemv of 3 tokens: {e:?}"
    );
    let e = record_matmul_op(&mut enc, &w, &io, Op::GemvMulti, Variant::Subgroup);
    assert!(
        matches!(e, Err(Error::Unsupported { .. })),
        "no subgroup gemv_multi: {e:?}"
    );
    let e = record_matmul_op(&mut enc, &w, &io, Op::RmsNorm, Variant::Plain);
    assert!(matches!(e, Err(Error::Unsupported { .. })), "{e:?}");
    assert_eq!(enc.dispatch_count(), 0);
}

/// The small-batch benchmark times the device's op per token count and the GEMM it
/// replaces, on one set of weight copies.
#[test]
fn bench_tokens_times_each_case() {
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    use marlin_gpu::bench::{bench_tokens, TokensCase};
    let cases = [
        TokensCase {
            tokens: 1,
            op: None,
        },
        TokensCase {
            tokens: 4,
            op: None,
        },
        TokensCase {
            tokens: 4,
            op: Some(Op::Gemm),
        },
    ];
    let r = bench_tokens(&ctx, QuantFormat::Q4_0, (64, 256), &cases, 2, 1 << 16).expect("bench");
    let names: Vec<&str> = r.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["gemv_q4_0", "gemv_multi_q4_0", "gemm_q4_0"]);
    assert_eq!(r[1].op, Op::GemvMulti);
    assert_eq!(r[1].tokens, 4);
    // 64 rows x 8 blocks x 18 bytes of weights, plus x and out of 4 tokens.
    assert_eq!(r[1].bytes, 64 * 8 * 18 + 4 * (256 + 64) * 4);
    assert!(r.iter().all(|b| b.us > 0.0 && b.gb_s > 0.0), "{r:?}");
    let empty = TokensCase {
        tokens: 0,
        op: None,
    };
    assert!(bench_tokens(&ctx, QuantFormat::Q4_0, (64, 256), &[empty], 1, 0).is_err());
}

/// A recording capped for prompt chunks keeps the GEMM above the cap; decode steps use the
/// context's threshold.
#[test]
fn prompt_steps_cap_gemv_multi() {
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    ctx.set_gemv_multi_max(64);
    let decode = StepEncoder::new(&ctx, "decode");
    assert_eq!(decode.matmul_op(32), Op::GemvMulti);
    let prompt = StepEncoder::new(&ctx, "prompt").with_gemv_multi_cap(8);
    assert_eq!(prompt.matmul_op(8), Op::GemvMulti);
    assert_eq!(prompt.matmul_op(32), Op::Gemm);
    ctx.set_gemv_multi_max(0);
    assert_eq!(
        prompt.matmul_op(4),
        Op::Gemm,
        "the context's 0 still turns it off"
    );
}

/// Tall weights leave `gemv_multi` for the GEMM above 32 tokens only where the GEMM runs on
/// cooperative matrices (on other devices, lavapipe, the tiled GEMM would be slower), and
/// not for q4_0 and q8_0, whose `gemv_multi` stays faster up to 64 tokens.
#[test]
fn tall_weights_take_the_gemm_only_on_tensor_cores() {
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    if std::env::var_os("MARLIN_GPU_TALL_GEMM_MIN").is_some() {
        return;
    }
    let enc = StepEncoder::new(&ctx, "tall");
    for format in [QuantFormat::Q4_K, QuantFormat::Q4_0, QuantFormat::Q8_0] {
        let coop = ctx.matmul_variant(Op::Gemm, format).is_coop();
        let tall = match coop && format == QuantFormat::Q4_K {
            true => Op::Gemm,
            false => Op::GemvMulti,
        };
        assert_eq!(enc.matmul_op_rows(40, 14336, format), tall, "{format:?}");
        assert_eq!(enc.matmul_op_rows(32, 14336, format), Op::GemvMulti);
        assert_eq!(enc.matmul_op_rows(40, 4096, format), Op::GemvMulti);
        assert_eq!(enc.matmul_op_rows(1, 128256, format), Op::Gemv);
    }
}
