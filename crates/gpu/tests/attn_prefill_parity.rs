//! Flash-style prefill attention (`attn_prefill`) against the f64 reference: whole prompts,
//! chunks after a cached prefix, two sequences in one step, GQA, sliding windows, f16 and
//! f32 caches, head sizes 6..256, and guard regions around the output. Lavapipe (testkit).

mod attn_case;
mod testkit;

use attn_case::{case, AttnInputs, Seq};
use marlin_gpu::{
    attn_prefill_blocks, record_attention_prefill, CacheDtype, GpuContext, StepEncoder,
    ATTN_PREFILL_BLOCK,
};

fn prefill(ctx: &GpuContext, i: &AttnInputs<'_>) {
    let mut enc = StepEncoder::new(ctx, "t");
    record_attention_prefill(
        &mut enc, &i.shape, i.q, i.k_cache, i.v_cache, i.meta, i.blocks, i.n_blocks, i.out,
    )
    .expect("attn_prefill");
    enc.submit().expect("submit");
}

#[test]
fn prefill_attention_matches_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    let run = |ctx, dims, seqs: &[Seq], window| {
        case(ctx, dims, seqs, window, ATTN_PREFILL_BLOCK, 1e-11, &prefill);
    };
    let whole = |n| Seq {
        n_pos: n,
        q_from: 0,
    };
    run(ctx, (CacheDtype::F16, 4, 2, 64), &[whole(40)], None);
    run(ctx, (CacheDtype::F32, 4, 2, 64), &[whole(40)], None);
    // A chunk after a cached prefix, and a second sequence in the same step.
    let two = [
        Seq {
            n_pos: 90,
            q_from: 61,
        },
        whole(21),
    ];
    run(ctx, (CacheDtype::F16, 3, 1, 32), &two, None);
    run(ctx, (CacheDtype::F16, 2, 2, 32), &two, Some(7));
    run(ctx, (CacheDtype::F32, 2, 1, 256), &[whole(35)], Some(20));
    run(
        ctx,
        (CacheDtype::F16, 4, 1, 6),
        &[Seq {
            n_pos: 17,
            q_from: 16,
        }],
        None,
    );
}

#[test]
fn blocks_split_sequences_into_sixteens() {
    assert_eq!(
        attn_prefill_blocks(&[40, 1, 16]),
        [0, 16, 16, 16, 32, 8, 40, 1, 41, 16]
    );
    assert!(attn_prefill_blocks(&[]).is_empty());
}
