//! The `attn_paged` kernels — plain (one workgroup per query head and token) and gqa (one
//! per kv head and token) — against the reference attention and each other, for every KV
//! dtype, group sizes 1–8, several sequences of different lengths in one dispatch, windows
//! and odd head sizes; the launcher's choice between them; and (ignored) their speed on
//! decode-batch shapes. Lavapipe (see testkit).

mod testkit;

use half::f16;
use marlin_core::reference;
use marlin_cpu::attention::attention;
use marlin_cpu::kv::{KvDtype, KvLayout, PagedKv};
use marlin_gpu::ops::attention::{
    attn_paged_variant, record_attention_variant, ATTN_GQA_MAX_GROUP,
};
use marlin_gpu::{
    read_f32, record_attention, record_kv_write_heads, upload_f32, AttnShape, CacheDtype,
    GpuContext, PooledBuffer, Span, StepEncoder, Variant,
};

/// The kernels under test, in the order [`run`] returns their outputs.
const VARIANTS: [Variant; 2] = [Variant::Gqa, Variant::Plain];
use testkit::{assert_sentinels, guarded, nmse, random_vec, rng, KvRows, GUARD};

const DTYPES: [CacheDtype; 4] = [
    CacheDtype::F32,
    CacheDtype::F16,
    CacheDtype::Int8,
    CacheDtype::Fp8E4M3,
];

/// One attention problem: query token `j` is the last token of its own sequence of
/// `lens[j]` keys (a decode step of several sequences).
struct Case {
    n_heads: usize,
    n_kv: usize,
    hd: usize,
    lens: Vec<usize>,
    window: Option<usize>,
}

/// One sequence's K and V rows.
type Kv = (Vec<f32>, Vec<f32>);

/// The sequences' K/V rows (`[len][n_kv][hd]` each, f16-rounded for an F16 cache) and
/// block tables into one shared cache (blocks interleaved between sequences, backwards).
fn sequences(c: &Case, dtype: CacheDtype, seed: u64) -> (Vec<Kv>, Vec<Vec<u32>>) {
    let mut r = rng(seed);
    let row = c.n_kv * c.hd;
    let kv: Vec<Kv> = c
        .lens
        .iter()
        .map(|&n| {
            let mut k = random_vec(&mut r, n * row);
            let mut v = random_vec(&mut r, n * row);
            if dtype == CacheDtype::F16 {
                for x in k.iter_mut().chain(v.iter_mut()) {
                    *x = f16::from_f32(*x).to_f32();
                }
            }
            (k, v)
        })
        .collect();
    let total: usize = c.lens.iter().map(|n| n.div_ceil(16)).sum();
    let mut next = total + 1;
    let mut tables: Vec<Vec<u32>> = vec![Vec::new(); c.lens.len()];
    for b in 0..c.lens.iter().map(|n| n.div_ceil(16)).max().unwrap_or(0) {
        for (s, &n) in c.lens.iter().enumerate() {
            if b < n.div_ceil(16) {
                next -= 1;
                tables[s].push(next as u32);
            }
        }
    }
    (kv, tables)
}

/// One problem on the GPU: the cache written, the queries after GUARD NaN floats, the meta
/// words after 5 padding words.
struct Problem {
    kv: Vec<Kv>,
    tables: Vec<Vec<u32>>,
    n_blocks: usize,
    q: Vec<f32>,
    kc: PooledBuffer,
    vc: PooledBuffer,
    qb: PooledBuffer,
    mb: PooledBuffer,
    shape: AttnShape,
}

fn setup(ctx: &GpuContext, c: &Case, dtype: CacheDtype) -> Problem {
    let (n_q, row) = (c.lens.len(), c.n_kv * c.hd);
    let seed = (c.hd * 31 + c.n_heads * 7 + c.lens.iter().sum::<usize>()) as u64;
    let (kv, tables) = sequences(c, dtype, seed);
    let n_blocks = tables.iter().map(Vec::len).sum::<usize>() + 1;
    let q = random_vec(&mut rng(seed + 1), n_q * c.n_heads * c.hd);
    // All sequences' K/V in one write, token rows in sequence order.
    let (mut k_all, mut v_all, mut slots) = (Vec::new(), Vec::new(), Vec::new());
    for (s, (k, v)) in kv.iter().enumerate() {
        k_all.extend_from_slice(k);
        v_all.extend_from_slice(v);
        slots.extend((0..c.lens[s]).map(|p| tables[s][p / 16] * 16 + (p % 16) as u32));
    }
    // meta: 5 words of padding, per query (pos, table offset), then the tables.
    let mut meta = vec![0u32; 5];
    let mut t_off = 5 + 2 * n_q;
    for (s, &n) in c.lens.iter().enumerate() {
        meta.extend([(n - 1) as u32, t_off as u32]);
        t_off += tables[s].len();
    }
    tables.iter().for_each(|t| meta.extend_from_slice(t));
    let up = |v: &[f32]| upload_f32(ctx, v).expect("upload");
    let words = n_blocks * 16 * dtype.slot_words(c.n_kv, c.hd);
    let (kc, vc) = (up(&vec![7.5; words]), up(&vec![-7.5; words]));
    let rows = KvRows::upload(ctx, &k_all, &v_all, &slots, row);
    let mb = up(bytemuck::cast_slice(&meta));
    let shape = shape_of(c, dtype);
    let mut qh = vec![f32::NAN; GUARD + n_q * shape.q_stride];
    let w = c.n_heads * c.hd;
    for j in 0..n_q {
        qh[GUARD + j * shape.q_stride..][..w].copy_from_slice(&q[j * w..][..w]);
    }
    let qb = up(&qh);
    let mut enc = StepEncoder::new(ctx, "t");
    let io = rows.io(&kc, &vc);
    record_kv_write_heads(&mut enc, &io, dtype, slots.len(), c.n_kv, c.hd).expect("kv write");
    enc.submit().expect("submit");
    Problem {
        kv,
        tables,
        n_blocks,
        q,
        kc,
        vc,
        qb,
        mb,
        shape,
    }
}

/// Outputs of the [`VARIANTS`], `record_attention` (the launcher's choice) and the
/// reference (f32 KV: the f64-summed reference; F16 KV: the same on f16-rounded K/V;
/// quantized KV: the CPU attention over its quantized cache, whose codes the GPU's equal).
fn run(ctx: &GpuContext, c: &Case, dtype: CacheDtype) -> [Vec<f32>; 4] {
    let p = setup(ctx, c, dtype);
    let len = p.q.len();
    let up = |v: &[f32]| upload_f32(ctx, v).expect("upload");
    let outs = [(); 3].map(|_| up(&guarded(len)));
    let mut enc = StepEncoder::new(ctx, "t");
    let (qs, ms) = (Span::new(&p.qb, GUARD), Span::new(&p.mb, 5));
    for (variant, ob) in VARIANTS.into_iter().zip(&outs) {
        let os = Span::new(ob, GUARD);
        record_attention_variant(&mut enc, &p.shape, variant, qs, &p.kc, &p.vc, ms, os)
            .expect("attention");
    }
    let os = Span::new(&outs[2], GUARD);
    record_attention(&mut enc, &p.shape, qs, &p.kc, &p.vc, ms, os).expect("attention");
    assert_eq!(enc.dispatch_count(), 3);
    enc.submit().expect("submit");
    let [gqa, plain, auto] = outs.map(|ob| {
        let all = read_f32(ctx, &ob, 0, len + 2 * GUARD).expect("read");
        assert_sentinels(&all, (0..GUARD).chain(GUARD + len..all.len()), "out guards");
        all[GUARD..GUARD + len].to_vec()
    });
    let w = c.n_heads * c.hd;
    let scale = p.shape.scale;
    let mut want = Vec::with_capacity(len);
    for (j, (k, v)) in p.kv.iter().enumerate() {
        let qj = &p.q[j * w..][..w];
        let pos = [c.lens[j] - 1];
        if dtype.is_quantized() {
            let kd = match dtype {
                CacheDtype::Int8 => KvDtype::Int8,
                _ => KvDtype::Fp8E4M3,
            };
            let layout = KvLayout {
                block_size: 16,
                n_kv_heads: c.n_kv,
                head_dim: c.hd,
            };
            let mut cpu = PagedKv::with_dtype(layout, p.n_blocks, kd).expect("cpu kv");
            cpu.write_tokens(&p.tables[j], 0, k, v).expect("cpu write");
            let mut o = vec![0.0; w];
            attention(
                qj,
                &pos,
                &cpu,
                &p.tables[j],
                c.n_heads,
                scale,
                c.window,
                &mut o,
            )
            .expect("cpu attention");
            want.extend(o);
        } else {
            let o = reference::attention(qj, k, v, &pos, c.n_heads, c.n_kv, c.hd, scale, c.window);
            want.extend(o);
        }
    }
    [gqa, plain, auto, want]
}

/// Microseconds per dispatch of each kernel on Llama-3-8B heads (32 / 8, head_dim 128,
/// f16 and fp8 caches) for decode batches of `tokens` sequences of `len` keys: 50 back-to-back
/// dispatches per kernel, timed from the host. For hardware A/B runs
/// (`MARLIN_TEST_ADAPTER=nvidia ... --ignored --nocapture attn_speed`).
#[test]
#[ignore]
fn attn_speed() {
    let Some(ctx) = testkit::ctx() else { return };
    for (tokens, len) in [
        (32, 16),
        (32, 80),
        (32, 200),
        (8, 80),
        (1, 80),
        (1, 250),
        (64, 256),
    ] {
        for dtype in [CacheDtype::F16, CacheDtype::Fp8E4M3] {
            let c = case(32, 8, 128, &vec![len; tokens], None);
            let p = setup(ctx, &c, dtype);
            let out = upload_f32(ctx, &vec![0.0; p.q.len()]).expect("out");
            let (qs, ms, os) = (
                Span::new(&p.qb, GUARD),
                Span::new(&p.mb, 5),
                Span::whole(&out),
            );
            let mut line = format!("attn_speed {dtype:?} tokens {tokens} keys {len}:");
            for variant in VARIANTS {
                let mut times = Vec::new();
                for _ in 0..3 {
                    let t = std::time::Instant::now();
                    let mut enc = StepEncoder::new(ctx, "t");
                    for _ in 0..50 {
                        record_attention_variant(
                            &mut enc, &p.shape, variant, qs, &p.kc, &p.vc, ms, os,
                        )
                        .expect("attention");
                    }
                    enc.submit().expect("submit");
                    read_f32(ctx, &out, 0, 1).expect("read");
                    times.push(t.elapsed().as_secs_f64() * 1e6 / 50.0);
                }
                let best = times.iter().cloned().fold(f64::MAX, f64::min);
                line += &format!(" {} {best:.1} µs", variant.name());
            }
            println!("{line}");
        }
    }
}

fn check(ctx: &GpuContext, c: &Case) {
    for dtype in DTYPES {
        let what = format!(
            "{dtype:?} h{}/{} hd{} lens {:?} w{:?}",
            c.n_heads, c.n_kv, c.hd, c.lens, c.window
        );
        let [gqa, plain, auto, want] = run(ctx, c, dtype);
        // Float KV: f32 rounding only (the plain kernel's bound in ops_parity); quantized:
        // the CPU's bound in kv_quant_parity.
        let tol = if dtype.is_quantized() { 1e-10 } else { 1e-11 };
        for (v, out) in VARIANTS.iter().zip([&gqa, &plain]) {
            let e = nmse(out, &want);
            assert!(e < tol, "{what}: {} nmse {e:e} vs reference", v.name());
            let e = nmse(out, &plain);
            assert!(e < 1e-11, "{what}: {} vs plain nmse {e:e}", v.name());
        }
        let chosen = match attn_paged_variant(&shape_of(c, dtype)) {
            Variant::Gqa => &gqa,
            _ => &plain,
        };
        assert!(
            bits_equal(&auto, chosen),
            "{what}: record_attention ran another kernel"
        );
    }
}

/// The attention shape of `c` (query rows 3 floats apart past their heads).
fn shape_of(c: &Case, dtype: CacheDtype) -> AttnShape {
    AttnShape {
        n_tokens: c.lens.len(),
        n_heads: c.n_heads,
        n_kv_heads: c.n_kv,
        head_dim: c.hd,
        q_stride: c.n_heads * c.hd + 3,
        scale: 1.0 / (c.hd as f32).sqrt(),
        window: c.window,
        dtype,
    }
}

fn gqa_on() -> bool {
    std::env::var("MARLIN_GPU_ATTN_GQA").as_deref() == Ok("1")
}

fn bits_equal(a: &[f32], b: &[f32]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

fn case(n_heads: usize, n_kv: usize, hd: usize, lens: &[usize], window: Option<usize>) -> Case {
    Case {
        n_heads,
        n_kv,
        hd,
        lens: lens.to_vec(),
        window,
    }
}

#[test]
fn variants_match_reference_for_llama_shapes() {
    let Some(ctx) = testkit::ctx() else { return };
    // G = 4 (tiles of 32 keys at head_dim 128), G = 8 (16-key tiles, two head sets), G = 2;
    // lengths crossing 16-key blocks and tiles.
    check(ctx, &case(8, 2, 128, &[1, 17, 33, 70, 100], None));
    check(ctx, &case(16, 2, 128, &[2, 16, 40], None));
    check(ctx, &case(4, 2, 128, &[65, 3], None));
    // The bitwise launcher check has teeth: the two kernels sum in different orders.
    let [gqa, plain, ..] = run(ctx, &case(8, 2, 128, &[70, 100], None), CacheDtype::F32);
    assert!(!bits_equal(&gqa, &plain));
}

#[test]
fn variants_match_reference_for_other_heads_and_windows() {
    let Some(ctx) = testkit::ctx() else { return };
    // head_dim 64 (64-key tiles), 80 (ten chunks of 16 lanes), 256, 20 and 6 (tails);
    // G = 1, 3, 5 (a partly used second head set), 8; sliding windows.
    check(ctx, &case(4, 1, 64, &[130, 64, 5], Some(50)));
    check(ctx, &case(6, 2, 80, &[20, 49], None));
    check(ctx, &case(5, 1, 256, &[33, 9], Some(12)));
    check(ctx, &case(8, 1, 20, &[100, 1, 18, 47], Some(30)));
    check(ctx, &case(3, 3, 6, &[40, 17], None));
    check(ctx, &case(3, 1, 6, &[70, 2], Some(64)));
}

#[test]
fn launcher_picks_gqa_for_grouped_batches() {
    let Some(ctx) = testkit::ctx() else { return };
    let on = gqa_on();
    let shape = |n_tokens, n_heads, n_kv_heads| AttnShape {
        n_tokens,
        n_heads,
        n_kv_heads,
        head_dim: 8,
        q_stride: n_heads * 8,
        scale: 1.0,
        window: None,
        dtype: CacheDtype::F16,
    };
    let gqa = if on { Variant::Gqa } else { Variant::Plain };
    for (t, h, kv, want) in [
        (1, 32, 8, Variant::Plain),
        (2, 32, 8, gqa),
        (32, 32, 8, gqa),
        (4, 16, 2, gqa),
        (4, 4, 2, gqa),
        (4, 8, 8, Variant::Plain),
        (4, 18, 2, Variant::Plain),
        (4, 64, 4, Variant::Plain),
    ] {
        assert_eq!(attn_paged_variant(&shape(t, h, kv)), want, "t{t} h{h}/{kv}");
    }
    // A gqa request past 8 heads per kv head is an error (record_attention's choice is
    // checked bit for bit in the parity cases).
    let zeros = upload_f32(ctx, &[0.0; 64]).expect("buf");
    let b = Span::whole(&zeros);
    let mut enc = StepEncoder::new(ctx, "t");
    let big = shape(2, 9 * 2, 2);
    assert!(
        record_attention_variant(&mut enc, &big, Variant::Gqa, b, &zeros, &zeros, b, b).is_err()
    );
    assert_eq!(ATTN_GQA_MAX_GROUP, 8);
}
