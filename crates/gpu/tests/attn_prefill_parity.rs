//! Flash-style prefill attention (`attn_prefill`) against the f64 reference: whole prompts,
//! chunks after a cached prefix, two sequences in one step, GQA, sliding windows, f16 and
//! f32 caches, head sizes 6..256, and guard regions around the output. Lavapipe (testkit).

mod testkit;

use half::f16;
use marlin_core::reference;
use marlin_gpu::{
    attn_prefill_blocks, read_f32, record_attention_prefill, record_kv_write, upload_f32,
    AttnShape, CacheDtype, GpuContext, KvWriteIo, Span, StepEncoder,
};
use testkit::{assert_sentinels, guarded, nmse, random_vec, rng, GUARD};

/// One sequence of a step: `n_pos` keys in its cache, queries at positions `q_from..n_pos`.
struct Seq {
    n_pos: usize,
    q_from: usize,
}

#[allow(clippy::too_many_arguments)]
fn case(
    ctx: &GpuContext,
    dtype: CacheDtype,
    n_heads: usize,
    n_kv: usize,
    hd: usize,
    seqs: &[Seq],
    window: Option<usize>,
) {
    let what = format!("{dtype:?} h{n_heads}/{n_kv} hd{hd} w{window:?}");
    let row = n_kv * hd;
    let mut r = rng((hd * 31 + seqs.len()) as u64);
    let scale = 1.0 / (hd as f32).sqrt();
    let n_tok: usize = seqs.iter().map(|s| s.n_pos - s.q_from).sum();
    let total_blocks: usize = seqs.iter().map(|s| s.n_pos.div_ceil(16)).sum::<usize>() + 1;
    let words = dtype.words(total_blocks * 16 * row);
    let kc = upload_f32(ctx, &vec![0.0; words]).expect("kc");
    let vc = upload_f32(ctx, &vec![0.0; words]).expect("vc");
    let mut want = Vec::new();
    let mut q_all = Vec::new();
    let mut tok_meta: Vec<[u32; 2]> = Vec::new();
    let mut tables: Vec<u32> = Vec::new();
    let mut next_block = total_blocks as u32;
    let mut enc = StepEncoder::new(ctx, "t");
    let mut keep = Vec::new();
    for s in seqs {
        let mut k = random_vec(&mut r, s.n_pos * row);
        let mut v = random_vec(&mut r, s.n_pos * row);
        if dtype == CacheDtype::F16 {
            for x in k.iter_mut().chain(v.iter_mut()) {
                *x = f16::from_f32(*x).to_f32();
            }
        }
        let q_pos: Vec<usize> = (s.q_from..s.n_pos).collect();
        let q: Vec<f32> = random_vec(&mut r, q_pos.len() * n_heads * hd)
            .iter()
            .map(|x| x * 3.0)
            .collect();
        want.extend(reference::attention(
            &q, &k, &v, &q_pos, n_heads, n_kv, hd, scale, window,
        ));
        q_all.extend_from_slice(&q);
        // Blocks handed out from the top down, so tables are not the identity.
        let table: Vec<u32> = (0..s.n_pos.div_ceil(16))
            .map(|_| {
                next_block -= 1;
                next_block
            })
            .collect();
        let slots: Vec<u32> = (0..s.n_pos)
            .map(|p| table[p / 16] * 16 + (p % 16) as u32)
            .collect();
        let (kb, vb) = (
            upload_f32(ctx, &k).expect("k"),
            upload_f32(ctx, &v).expect("v"),
        );
        let sb = upload_f32(ctx, bytemuck::cast_slice(&slots)).expect("slots");
        let io = KvWriteIo {
            k: Span::whole(&kb),
            v: Span::whole(&vb),
            src_stride: row,
            slots: Span::whole(&sb),
            k_cache: &kc,
            v_cache: &vc,
        };
        record_kv_write(&mut enc, &io, dtype, s.n_pos, row).expect("kv write");
        keep.extend([kb, vb, sb]);
        let t_off = tables.len();
        tables.extend_from_slice(&table);
        tok_meta.extend(q_pos.iter().map(|&p| [p as u32, t_off as u32]));
    }
    // Word layout: 3 words of padding, per-token meta, blocks, then the tables.
    let lens: Vec<usize> = seqs.iter().map(|s| s.n_pos - s.q_from).collect();
    let blocks = attn_prefill_blocks(&lens);
    let meta_off = 3;
    let blocks_off = meta_off + 2 * n_tok;
    let tables_off = blocks_off + blocks.len();
    let mut meta = vec![0u32; 3];
    meta.extend(
        tok_meta
            .iter()
            .flat_map(|m| [m[0], m[1] + tables_off as u32]),
    );
    meta.extend_from_slice(&blocks);
    meta.extend_from_slice(&tables);
    let mb = upload_f32(ctx, bytemuck::cast_slice(&meta)).expect("meta");
    let qb = upload_f32(ctx, &q_all).expect("q");
    let ob = upload_f32(ctx, &guarded(q_all.len())).expect("out");
    let shape = AttnShape {
        n_tokens: n_tok,
        n_heads,
        n_kv_heads: n_kv,
        head_dim: hd,
        q_stride: n_heads * hd,
        scale,
        window,
        dtype,
    };
    record_attention_prefill(
        &mut enc,
        &shape,
        &qb,
        &kc,
        &vc,
        Span::new(&mb, meta_off),
        Span::new(&mb, blocks_off),
        blocks.len() / 2,
        Span::new(&ob, GUARD),
    )
    .expect("attn_prefill");
    enc.submit().expect("submit");
    let all = read_f32(ctx, &ob, 0, q_all.len() + 2 * GUARD).expect("read");
    assert_sentinels(
        &all,
        (0..GUARD).chain(GUARD + q_all.len()..all.len()),
        &what,
    );
    let e = nmse(&all[GUARD..GUARD + q_all.len()], &want);
    assert!(e < 1e-11, "{what}: nmse {e:e}");
}

#[test]
fn prefill_attention_matches_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    let whole = |n| Seq {
        n_pos: n,
        q_from: 0,
    };
    case(ctx, CacheDtype::F16, 4, 2, 64, &[whole(40)], None);
    case(ctx, CacheDtype::F32, 4, 2, 64, &[whole(40)], None);
    // A chunk after a cached prefix, and a second sequence in the same step.
    let two = [
        Seq {
            n_pos: 90,
            q_from: 61,
        },
        whole(21),
    ];
    case(ctx, CacheDtype::F16, 3, 1, 32, &two, None);
    case(ctx, CacheDtype::F16, 2, 2, 32, &two, Some(7));
    case(ctx, CacheDtype::F32, 2, 1, 256, &[whole(35)], Some(20));
    case(
        ctx,
        CacheDtype::F16,
        4,
        1,
        6,
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
