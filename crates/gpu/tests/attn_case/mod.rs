//! A prompt-attention case shared by the prefill attention kernels' parity tests
//! (`attn_prefill`, `attn_flash`): sequences written into a paged cache through shuffled
//! block tables, queries from a cached prefix on, the f64 reference, guard regions.

use half::f16;
use marlin_core::reference;
use marlin_gpu::wgpu;
use marlin_gpu::{
    query_blocks, read_f32, record_kv_write, upload_f32, AttnShape, CacheDtype, GpuContext, Span,
    StepEncoder,
};

use crate::testkit::{assert_sentinels, guarded, nmse, random_vec, rng, KvRows, GUARD};

/// One sequence of a step: `n_pos` keys in its cache, queries at positions `q_from..n_pos`.
pub struct Seq {
    pub n_pos: usize,
    pub q_from: usize,
}

/// A prompt-attention kernel under test: records `inp` into an encoder of its own and
/// submits it.
pub type Runner<'a> = &'a dyn Fn(&GpuContext, &AttnInputs<'_>);

/// What a prompt-attention kernel reads and writes (the `record_attention_prefill` shape).
pub struct AttnInputs<'a> {
    pub shape: AttnShape,
    pub q: &'a wgpu::Buffer,
    pub k_cache: &'a wgpu::Buffer,
    pub v_cache: &'a wgpu::Buffer,
    pub meta: Span<'a>,
    pub blocks: Span<'a>,
    pub n_blocks: usize,
    pub out: Span<'a>,
}

/// One case: `seqs` in one step, KV written with `kv_write`, query blocks of `block`
/// tokens, output (guarded) against the f64 reference within NMSE `tol`.
#[allow(clippy::too_many_arguments)]
pub fn case(
    ctx: &GpuContext,
    (dtype, n_heads, n_kv, hd): (CacheDtype, usize, usize, usize),
    seqs: &[Seq],
    window: Option<usize>,
    block: usize,
    tol: f64,
    run: Runner<'_>,
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
        let rows = KvRows::upload(ctx, &k, &v, &slots, row);
        record_kv_write(&mut enc, &rows.io(&kc, &vc), dtype, s.n_pos, row).expect("kv write");
        keep.push(rows);
        let t_off = tables.len();
        tables.extend_from_slice(&table);
        tok_meta.extend(q_pos.iter().map(|&p| [p as u32, t_off as u32]));
    }
    // Word layout: 3 words of padding, per-token meta, blocks, then the tables.
    let lens: Vec<usize> = seqs.iter().map(|s| s.n_pos - s.q_from).collect();
    let blocks = query_blocks(&lens, block);
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
    enc.submit().expect("submit kv");
    drop(keep);
    let inp = AttnInputs {
        shape,
        q: &qb,
        k_cache: &kc,
        v_cache: &vc,
        meta: Span::new(&mb, meta_off),
        blocks: Span::new(&mb, blocks_off),
        n_blocks: blocks.len() / 2,
        out: Span::new(&ob, GUARD),
    };
    run(ctx, &inp);
    let all = read_f32(ctx, &ob, 0, q_all.len() + 2 * GUARD).expect("read");
    assert_sentinels(
        &all,
        (0..GUARD).chain(GUARD + q_all.len()..all.len()),
        &what,
    );
    let e = nmse(&all[GUARD..GUARD + q_all.len()], &want);
    assert!(e < tol, "{what}: nmse {e:e}");
}
