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

/// `hadamard_scale` on both sides of a trellis matmul against core's rotation: input side
/// `H(s ⊙ x)` densely, output side `s ⊙ H(x)` into a strided, guarded output.
#[test]
fn hadamard_scale_matches_reference_on_both_sides() {
    use marlin_gpu::{read_f32, record_hadamard_scale, upload_f32, ScaleSide, Span, StepEncoder};
    let Some(ctx) = testkit::ctx() else { return };
    for (n_tokens, cols, block) in [(1, 64, 64), (3, 96, 32), (2, 256, 128)] {
        let mut r = rng(cols as u64 + block as u64);
        let x = random_vec(&mut r, n_tokens * cols);
        let s = random_vec(&mut r, cols);
        let xb = upload_f32(ctx, &x).expect("x");
        let sb = upload_f32(ctx, &s).expect("s");
        // Input side: scale, then rotate.
        let mut want_in: Vec<f32> = x.iter().enumerate().map(|(i, v)| v * s[i % cols]).collect();
        hadamard::rotate(&mut want_in, block).expect("rotate");
        let ob = upload_f32(ctx, &vec![7.0; n_tokens * cols]).expect("out");
        let mut enc = StepEncoder::new(ctx, "t");
        record_hadamard_scale(
            &mut enc,
            Span::whole(&xb),
            &sb,
            Span::whole(&ob),
            n_tokens,
            cols,
            block,
            ScaleSide::Input,
        )
        .expect("record input side");
        enc.submit().expect("submit");
        let got = read_f32(ctx, &ob, 0, n_tokens * cols).expect("read");
        assert!(nmse(&got, &want_in) < 1e-12, "input side {cols}/{block}");
        // Output side: rotate, then scale, rows `stride` apart after an offset of 3.
        let mut want_out = x.clone();
        hadamard::rotate(&mut want_out, block).expect("rotate");
        for (i, v) in want_out.iter_mut().enumerate() {
            *v *= s[i % cols];
        }
        let stride = cols + 5;
        let len = 3 + n_tokens * stride;
        let ob = upload_f32(ctx, &vec![7.0; len]).expect("out");
        let mut enc = StepEncoder::new(ctx, "t");
        record_hadamard_scale(
            &mut enc,
            Span::whole(&xb),
            &sb,
            Span::new(&ob, 3),
            n_tokens,
            cols,
            block,
            ScaleSide::Output { out_stride: stride },
        )
        .expect("record output side");
        enc.submit().expect("submit");
        let all = read_f32(ctx, &ob, 0, len).expect("read");
        for t in 0..n_tokens {
            let row = &all[3 + t * stride..3 + t * stride + cols];
            let e = nmse(row, &want_out[t * cols..(t + 1) * cols]);
            assert!(e < 1e-12, "output side {cols}/{block} token {t}: {e:e}");
            let gap = &all[3 + t * stride + cols..3 + (t + 1) * stride];
            assert!(gap.iter().all(|&v| v == 7.0), "gap written");
        }
        assert!(all[..3].iter().all(|&v| v == 7.0), "offset written");
    }
}
