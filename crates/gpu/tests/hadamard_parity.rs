//! Weights stored block-Hadamard rotated (`QTensor::with_hadamard`): the GPU matmul rotates
//! its input first, so it matches the reference on the rotated input, for GEMV and GEMM.

mod testkit;

use marlin_core::{hadamard, reference, Group, QuantFormat};
use marlin_gpu::{matmul, GpuWeight};
use testkit::{nmse, nmse_threshold, random_vec, random_weight, rng};

#[test]
fn rotated_weights_rotate_their_input() {
    let Some(ctx) = testkit::ctx() else { return };
    let (rows, cols) = (21, 512);
    for (format, block) in [
        (QuantFormat::Fp4(Group::G128), 128),
        (QuantFormat::Q8_0, 64),
        (QuantFormat::F32, 32),
    ] {
        let t = random_weight(format, rows, cols, 5)
            .with_hadamard(block)
            .expect("mark");
        let w = GpuWeight::upload(ctx, &t).expect("upload");
        assert_eq!(w.hadamard, block);
        let dense = t.to_f32().expect("dq");
        for n_tokens in [1, 5] {
            let x = random_vec(&mut rng(9), n_tokens * cols);
            let mut xr = x.clone();
            hadamard::rotate(&mut xr, block).expect("rotate");
            let want = reference::matmul(&dense, &xr, rows, cols, n_tokens);
            let got = matmul(ctx, &w, &x, n_tokens).expect("matmul");
            let e = nmse(&got, &want);
            let op = ctx.matmul_op(n_tokens);
            let limit = nmse_threshold(op, format, ctx.matmul_variant(op, format));
            eprintln!("{format} block {block} n {n_tokens}: nmse {e:e}");
            assert!(e < limit, "{format} block {block} n {n_tokens}: nmse {e:e}");
            // And it is not the unrotated product.
            let plain = reference::matmul(&dense, &x, rows, cols, n_tokens);
            assert!(nmse(&got, &plain) > 1e-3, "{format}: input was not rotated");
        }
    }
}
