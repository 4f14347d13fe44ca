//! Backend behaviour beyond kernel numerics: adapter choice, bad input as errors, several
//! dependent ops in one pass, pooling, pipeline caching and the benchmark functions.

mod testkit;

use marlin_core::{formats, reference, QuantFormat};
use marlin_gpu::bench::{bench_gemv_with, copy_bandwidth_with, BenchOpts, Timer};
use marlin_gpu::wgpu;
use marlin_gpu::{
    list_adapters, matmul, read_f32, record_matmul, storage_f32, upload_f32, DeviceSelector, Error,
    GpuContext, GpuWeight, MatmulIo, StepEncoder,
};
use testkit::{nmse, nmse_threshold, random_vec, random_weight, rng};

/// The NMSE threshold of the GEMV variant `record_matmul` picks for `format` here.
fn gemv_threshold(ctx: &GpuContext, format: QuantFormat) -> f64 {
    let op = marlin_gpu::Op::Gemv;
    nmse_threshold(op, format, ctx.matmul_variant(op, format))
}

#[test]
fn auto_never_opens_a_software_adapter() {
    let adapters = list_adapters();
    if testkit::ctx().is_none() {
        return;
    }
    assert!(!adapters.is_empty());
    assert!(GpuContext::new(DeviceSelector::Cpu).expect("cpu").is_none());
    let auto = GpuContext::new(DeviceSelector::Auto).expect("auto");
    if adapters.iter().all(|a| a.software) {
        assert!(auto.is_none(), "auto picked a software adapter");
    } else {
        assert!(auto.is_some_and(|c| !c.summary.software));
    }
    let line = adapters[0].to_string();
    assert!(
        line.starts_with("gpu:0 ") && line.contains("max binding"),
        "{line}"
    );
    assert!(GpuContext::new(DeviceSelector::GpuIndex(adapters.len())).is_err());
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let Some(ctx) = testkit::ctx() else { return };
    let q2 =
        formats::quantize_tensor(QuantFormat::Q2_K, &[4, 256], &vec![0.5; 1024]).expect("q2_k");
    assert!(matches!(
        GpuWeight::upload(ctx, &q2),
        Err(Error::Unsupported { .. })
    ));
    let odd = GpuWeight::from_bytes(ctx, QuantFormat::F32, 2, 6, &[0u8; 48], 1 << 20);
    assert!(matches!(odd, Err(Error::Shape { .. })), "{odd:?}");
    let short = GpuWeight::from_bytes(ctx, QuantFormat::Q4_0, 2, 64, &[0u8; 71], 1 << 20);
    assert!(matches!(short, Err(Error::Shape { .. })), "{short:?}");
    let too_big_row = GpuWeight::from_bytes(ctx, QuantFormat::F32, 1, 64, &[0u8; 256], 128);
    assert!(
        matches!(too_big_row, Err(Error::TooLarge { .. })),
        "{too_big_row:?}"
    );

    let w = GpuWeight::upload(ctx, &random_weight(QuantFormat::Q4_0, 8, 64, 3)).expect("upload");
    let x = storage_f32(ctx, 64).expect("x");
    let out = storage_f32(ctx, 8).expect("out");
    let mut enc = StepEncoder::new(ctx, "bad");
    for io in [
        MatmulIo::new(&x, &out, 0),
        MatmulIo::new(&x, &out, 2),
        MatmulIo {
            x_offset: 2,
            ..MatmulIo::new(&x, &out, 1)
        },
        MatmulIo {
            out_stride: Some(7),
            ..MatmulIo::new(&x, &out, 1)
        },
        MatmulIo {
            out_offset: 60,
            ..MatmulIo::new(&x, &out, 1)
        },
    ] {
        let r = record_matmul(&mut enc, &w, &io);
        assert!(matches!(r, Err(Error::Shape { .. })), "{io:?}: {r:?}");
    }
    assert_eq!(enc.dispatch_count(), 0);
    assert!(matmul(ctx, &w, &[0.0; 63], 1).is_err());
}

#[test]
fn dependent_ops_share_one_pass() {
    let Some(ctx) = testkit::ctx() else { return };
    let (t1, t2) = (
        random_weight(QuantFormat::Q4_0, 96, 256, 11),
        random_weight(QuantFormat::Q6_K, 40, 256, 12),
    );
    // Second layer reads only the first 256 of the 96 + 160 padding floats: pad W1 to 256 rows.
    let t1 = {
        let mut v = t1.to_f32().expect("dq");
        v.resize(256 * 256, 0.0);
        formats::quantize_tensor(QuantFormat::Q4_0, &[256, 256], &v).expect("q")
    };
    let (w1, w2) = (
        GpuWeight::upload(ctx, &t1).expect("w1"),
        GpuWeight::upload(ctx, &t2).expect("w2"),
    );
    let x = random_vec(&mut rng(5), 256);
    let xb = upload_f32(ctx, &x).expect("x");
    let h = storage_f32(ctx, 256).expect("h");
    let y = storage_f32(ctx, 40).expect("y");
    let mut enc = StepEncoder::new(ctx, "chain");
    for _ in 0..3 {
        record_matmul(&mut enc, &w1, &MatmulIo::new(&xb, &h, 1)).expect("l1");
        record_matmul(&mut enc, &w2, &MatmulIo::new(&h, &y, 1)).expect("l2");
    }
    assert_eq!((enc.pass_count(), enc.dispatch_count()), (1, 6));
    enc.submit().expect("submit");
    let h_ref = reference::matmul(&t1.to_f32().expect("dq"), &x, 256, 256, 1);
    let y_ref = reference::matmul(&t2.to_f32().expect("dq"), &h_ref, 40, 256, 1);
    let got = read_f32(ctx, &y, 0, 40).expect("read");
    // Two layers, each within its default variant's threshold (8-bit activations on Q4_0).
    let limit = 2.0 * gemv_threshold(ctx, QuantFormat::Q4_0);
    assert!(nmse(&got, &y_ref) < limit, "{}", nmse(&got, &y_ref));
}

#[test]
fn a_full_pool_frees_its_largest_idle_buffers_not_the_returning_one() {
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    let pool = ctx.pool();
    pool.set_idle_cap(1 << 20);
    // A long step's buffer fills the idle cap; a small one returned after it stays pooled.
    drop(storage_f32(&ctx, 1 << 18).expect("big"));
    assert_eq!(pool.stats().idle_bytes, 1 << 20);
    drop(storage_f32(&ctx, 1000).expect("small"));
    let before = pool.stats();
    let again = storage_f32(&ctx, 1000).expect("small again");
    let after = pool.stats();
    assert_eq!(after.created, before.created, "the small buffer was freed");
    assert_eq!(after.reused, before.reused + 1);
    drop(again);
    assert!(pool.stats().idle_bytes <= 1 << 20);
}

#[test]
fn the_pool_hands_out_its_oldest_idle_buffer_of_a_class() {
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    let bufs: Vec<_> = (0..3)
        .map(|_| storage_f32(&ctx, 500).expect("buf"))
        .collect();
    let handles: Vec<wgpu::Buffer> = bufs.iter().map(|b| b.buffer().clone()).collect();
    // Returned newest first, middle last: still handed out oldest first, so a repeating
    // step gets the same buffers (and cached bind groups) whatever order they came back in.
    let mut bufs = bufs.into_iter();
    let (a, b, c) = (bufs.next(), bufs.next(), bufs.next());
    drop((c, a, b));
    let mut held = Vec::new();
    for want in &handles {
        let got = storage_f32(&ctx, 500).expect("again");
        assert!(got.buffer() == want, "not the oldest idle buffer");
        held.push(got);
    }
}

#[test]
fn pool_reuses_and_pipelines_are_cached() {
    // Parallel tests would take the freed buffer or compile pipelines in between.
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    let ctx = &ctx;
    let before = ctx.pool().stats();
    drop(storage_f32(ctx, 12_345).expect("a"));
    let b = storage_f32(ctx, 12_000).expect("b");
    assert!(b.size() >= 12_345 * 4 && b.len() == 48_000);
    assert!(ctx.pool().stats().reused > before.reused);

    let w = GpuWeight::upload(ctx, &random_weight(QuantFormat::Q8_0, 4, 32, 9)).expect("w");
    let x = vec![1.0; 32];
    let first = matmul(ctx, &w, &x, 1).expect("run 1");
    let compiled = ctx.pipelines_compiled();
    assert_eq!(matmul(ctx, &w, &x, 1).expect("run 2"), first);
    assert_eq!(ctx.pipelines_compiled(), compiled);
}

#[test]
fn benchmarks_report_positive_bandwidth() {
    let Some(ctx) = testkit::ctx() else { return };
    let opts = BenchOpts {
        iters: 4,
        min_working_set: 1 << 20,
        variant: None,
    };
    let b = bench_gemv_with(ctx, QuantFormat::Q4_0, 64, 256, &opts).expect("bench");
    assert_eq!(b.name, "gemv_q4_0");
    assert!(
        b.buffers > 1 && b.gb_s.is_finite() && b.gb_s > 0.0 && b.us > 0.0,
        "{b:?}"
    );
    let want = if ctx.features.timestamp_query {
        Timer::Timestamp
    } else {
        Timer::Wall
    };
    assert_eq!(b.timer, want);
    let c = copy_bandwidth_with(ctx, 1 << 20, 3).expect("copy");
    assert!(c.gb_s.is_finite() && c.gb_s > 0.0, "{c:?}");
    eprintln!("lavapipe: {b:?}\n{c:?}");
}

/// More GEMV workgroups than one grid dimension allows (65,535) fold into a 2-D grid.
#[test]
fn huge_row_counts_fold_the_grid() {
    let Some(ctx) = testkit::ctx() else { return };
    let rows = 4 * 65_535 + 9;
    let t = random_weight(QuantFormat::F32, rows, 4, 21);
    let w = GpuWeight::upload(ctx, &t).expect("upload");
    let x = [0.5f32, -1.0, 2.0, 0.25];
    let want = reference::matmul(&t.to_f32().expect("dq"), &x, rows, 4, 1);
    let got = matmul(ctx, &w, &x, 1).expect("gemv");
    assert!(nmse(&got, &want) < 1e-12);
    assert!((got[rows - 1] - want[rows - 1]).abs() < 1e-5);
}

#[test]
fn support_matrix_and_prewarm() {
    let Some(ctx) = testkit::ctx() else { return };
    use marlin_gpu::{KernelKey, Op, Variant, MATMUL_FORMATS};
    for op in Op::MATMUL {
        for &f in MATMUL_FORMATS.iter() {
            assert!(ctx.supports(op, f), "{op}_{f}");
        }
        assert!(!ctx.supports(op, QuantFormat::Q2_K));
    }
    let key = KernelKey {
        op: Op::Gemm,
        format: QuantFormat::Q5_K,
        variant: Variant::Plain,
    };
    ctx.prewarm(&[key]).expect("prewarm");
    let bad = KernelKey {
        op: Op::Gemm,
        format: QuantFormat::Q5_K,
        variant: Variant::Subgroup,
    };
    assert!(matches!(
        ctx.prewarm(&[bad]),
        Err(Error::Unsupported { .. })
    ));
}

/// Prints GEMV bandwidth for every format and the copy bandwidth (run with --ignored).
#[test]
#[ignore = "benchmark; prints numbers"]
fn print_gemv_bandwidth_table() {
    let Some(ctx) = testkit::ctx() else { return };
    let opts = BenchOpts {
        iters: 8,
        min_working_set: 64 << 20,
        variant: None,
    };
    for &f in marlin_gpu::MATMUL_FORMATS.iter() {
        let b = bench_gemv_with(ctx, f, 1024, 4096, &opts).expect("bench");
        assert!(b.gb_s > 0.0);
        eprintln!(
            "{} {}: {:.1} us, {:.2} GB/s ({:?}, {} buffers)",
            b.name,
            b.variant.name(),
            b.us,
            b.gb_s,
            b.timer,
            b.buffers
        );
    }
    let c = marlin_gpu::copy_bandwidth(ctx).expect("copy");
    eprintln!(
        "copy: {:.2} GB/s ({} MiB, {:?})",
        c.gb_s,
        c.bytes >> 20,
        c.timer
    );
}

/// Run a chain of `links` dependent square matmuls a → b → a → … starting from `x` in `a`;
/// returns the output. The buffers persist across calls, so a bind cache can be reused.
fn run_chain(
    ctx: &GpuContext,
    w: &GpuWeight,
    (a, b): (&wgpu::Buffer, &wgpu::Buffer),
    x: &[f32],
    links: usize,
    submit_every: u32,
    cache: Option<&marlin_gpu::BindCache>,
) -> Vec<f32> {
    ctx.queue.write_buffer(a, 0, bytemuck::cast_slice(x));
    let mut enc = StepEncoder::new(ctx, "chain").with_submit_every(submit_every);
    if let Some(c) = cache {
        enc = enc.with_bind_cache(c);
    }
    for i in 0..links {
        let (src, dst) = if i % 2 == 0 { (a, b) } else { (b, a) };
        record_matmul(&mut enc, w, &MatmulIo::new(src, dst, 1)).expect("link");
    }
    enc.submit().expect("submit");
    let out = if links % 2 == 1 { b } else { a };
    read_f32(ctx, out, 0, x.len()).expect("read")
}

#[test]
fn chunked_submits_and_cached_bind_groups_change_nothing() {
    // Cache hits need the same parameter arenas each step: a private pool, not the shared one.
    let Some(ctx) = testkit::private_ctx() else {
        return;
    };
    let ctx = &ctx;
    let t = random_weight(QuantFormat::Q8_0, 128, 128, 21);
    let w = GpuWeight::upload(ctx, &t).expect("w");
    let x = random_vec(&mut rng(22), 128);
    let (a, b) = (
        upload_f32(ctx, &x).expect("a"),
        storage_f32(ctx, 128).expect("b"),
    );
    let links = 7;
    let single = run_chain(ctx, &w, (&a, &b), &x, links, 0, None);
    let cache = marlin_gpu::BindCache::new();
    let mut cached = Vec::new();
    for step in 0..2 {
        // Step 1 binds the same buffers: its bind groups come from the cache.
        let chunked = run_chain(ctx, &w, (&a, &b), &x, links, 2, Some(&cache));
        assert_eq!(chunked, single, "step {step}: chunked/cached run differs");
        cached.push(cache.len());
    }
    assert!(
        cached[0] > 0 && cached[1] == cached[0],
        "bind groups cached: {cached:?}"
    );
    // Once the pool frees idle buffers past its cap, the cache starts over (its groups would
    // keep those buffers alive): one link leaves one group.
    drop(storage_f32(ctx, 4096).expect("idle"));
    let before = ctx.pool().evictions();
    ctx.pool().set_idle_cap(0);
    assert!(ctx.pool().evictions() > before, "nothing evicted");
    run_chain(ctx, &w, (&a, &b), &x, 1, 0, Some(&cache));
    assert_eq!(cache.len(), 1, "the cache kept groups past an eviction");
    ctx.pool().set_idle_cap(1 << 30);
    let dense = t.to_f32().expect("dq");
    let mut want = x.clone();
    for _ in 0..links {
        want = reference::matmul(&dense, &want, 128, 128, 1);
    }
    // 8-bit activation error compounds over the links (lavapipe: 4e-4 after 7).
    let limit = links as f64 * gemv_threshold(ctx, QuantFormat::Q8_0).max(1e-9) * 10.0;
    assert!(nmse(&single, &want) < limit, "{}", nmse(&single, &want));
}
