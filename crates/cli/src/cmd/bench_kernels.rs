//! `metal-marlin bench kernels`: GPU kernel speed against the device's own limit, as one JSON
//! object — copy bandwidth, then per weight format and shape the GEMV (decode) read rate,
//! the small-batch decode curve (`--gemv-tokens`) and the GEMM (prefill) TFLOP/s.

use anyhow::{bail, Context, Result};
use marlin_core::QuantFormat;
use marlin_gpu::bench::{
    bench_gemm, bench_gemv, bench_tokens, copy_bandwidth, stream_bandwidth, TokensCase,
};
use marlin_gpu::registry::{
    coop_kmajor, coop_splits, gemm_tile, gemm_variant_for, gemv_multi_rows, gemv_multi_wide,
};
use marlin_gpu::{DeviceSelector, GpuContext};
use marlin_gpu::{Op, Variant};
use serde_json::{json, Value};

use crate::args::BenchKernelsArgs;

/// Llama-3-8B's FFN gate/up weight, then its attention-sized square weight.
const DEFAULT_SHAPES: [(usize, usize); 2] = [(14336, 4096), (4096, 4096)];

fn formats(names: &[String]) -> Result<Vec<QuantFormat>> {
    names
        .iter()
        .map(|n| {
            QuantFormat::from_name(n.trim()).with_context(|| {
                let all: Vec<&str> = QuantFormat::ALL.iter().map(|f| f.name()).collect();
                format!("unknown format `{n}` (formats: {})", all.join(", "))
            })
        })
        .collect()
}

fn open(device: &str) -> Result<GpuContext> {
    let sel: DeviceSelector = device.parse()?;
    if sel == DeviceSelector::Cpu {
        bail!("bench kernels measures GPU kernels; use --device gpu or gpu:N");
    }
    GpuContext::new(sel)?.with_context(|| {
        format!(
            "no hardware GPU for --device {device}; `--device gpu` also opens software \
             adapters (lavapipe), see `metal-marlin devices`"
        )
    })
}

/// GEMV and GEMM of one format and shape; a kernel that fails is reported, not fatal.
fn measure(
    ctx: &GpuContext,
    a: &BenchKernelsArgs,
    format: QuantFormat,
    (rows, cols): (usize, usize),
    copy_read_gb_s: f64,
    stream_read_gb_s: f64,
) -> Value {
    let mut out = json!({ "format": format.name(), "rows": rows, "cols": cols });
    out["gemv"] = match bench_gemv(ctx, format, rows, cols, a.iters) {
        Ok(g) => json!({
            "kernel": g.name,
            "variant": g.variant.name(),
            "bytes": g.bytes,
            "buffers": g.buffers,
            "us": g.us,
            "gb_s": g.gb_s,
            "pct_of_copy_read": 100.0 * g.gb_s / copy_read_gb_s,
            "pct_of_stream_read": 100.0 * g.gb_s / stream_read_gb_s,
            "timer": format!("{:?}", g.timer).to_lowercase(),
        }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    if !a.gemv_tokens.is_empty() {
        out["gemv_tokens"] = tokens_curve(ctx, a, format, (rows, cols), stream_read_gb_s);
    }
    if a.gemm_tokens > 0 {
        out["gemm"] = match bench_gemm(ctx, format, rows, cols, a.gemm_tokens, a.iters) {
            Ok(g) => json!({
                "kernel": g.name,
                "variant": g.variant.name(),
                "ran": gemm_ran(g.variant, (rows, cols), g.tokens),
                "tokens": g.tokens,
                "us": g.us,
                "tflop_s": g.tflop_s,
                "timer": format!("{:?}", g.timer).to_lowercase(),
            }),
            Err(e) => json!({ "error": e.to_string() }),
        };
    }
    out
}

/// What a GEMM of `variant` on `tokens` tokens of a (rows, cols) weight actually runs: the
/// launcher's variant (the coop GEMM picks its token tile by count), its (rows, tokens)
/// tile, its K splits and, for coop, the weight tile layout (`MARLIN_GPU_COOP_KMAJOR=1`:
/// K-major).
fn gemm_ran(variant: Variant, (weight_rows, cols): (usize, usize), tokens: usize) -> Value {
    let ran = gemm_variant_for(variant, weight_rows, tokens);
    let (rows, tile_tokens) = gemm_tile(ran);
    let body = match (ran.is_coop(), coop_kmajor()) {
        (false, _) => "tiled",
        (true, true) => "coop_chunked_kmajor",
        (true, false) => "coop_chunked",
    };
    let splits = coop_splits(ran, weight_rows, cols, tokens);
    json!({ "variant": ran.name(), "tile": [rows, tile_tokens], "body": body, "splits": splits })
}

/// What a `gemv_multi` of `variant` runs on a `(rows, cols)` weight: the launcher's width
/// and its rows per workgroup.
fn multi_ran(variant: Variant, (rows, cols): (usize, usize), tokens: usize) -> Value {
    let ran = gemv_multi_wide(variant, rows, cols, tokens);
    json!({ "variant": ran.name(), "rows_per_workgroup": gemv_multi_rows(ran) })
}

/// The cases of `--gemv-tokens`: each count with the device's op, then the GEMM for
/// counts the device sends elsewhere (the kernel gemv_multi replaces).
fn token_cases(ctx: &GpuContext, counts: &[usize]) -> Vec<TokensCase> {
    let mut v = Vec::new();
    for &tokens in counts {
        v.push(TokensCase { tokens, op: None });
        if tokens > 1 && ctx.matmul_op(tokens) != Op::Gemm {
            v.push(TokensCase {
                tokens,
                op: Some(Op::Gemm),
            });
        }
    }
    v
}

/// One entry per case of `--gemv-tokens`: kernel, time per step and per token, weight rate.
fn tokens_curve(
    ctx: &GpuContext,
    a: &BenchKernelsArgs,
    format: QuantFormat,
    shape: (usize, usize),
    stream_read_gb_s: f64,
) -> Value {
    let cases = token_cases(ctx, &a.gemv_tokens);
    match bench_tokens(ctx, format, shape, &cases, a.iters, 256 << 20) {
        Ok(v) => v
            .iter()
            .map(|b| {
                let mut e = json!({
                    "tokens": b.tokens,
                    "kernel": b.name,
                    "variant": b.variant.name(),
                    "us": b.us,
                    "us_per_token": b.us / b.tokens as f64,
                    "gb_s": b.gb_s,
                    "pct_of_stream_read": 100.0 * b.gb_s / stream_read_gb_s,
                    "timer": format!("{:?}", b.timer).to_lowercase(),
                });
                match b.op {
                    Op::Gemm => e["ran"] = gemm_ran(b.variant, shape, b.tokens),
                    Op::GemvMulti => e["ran"] = multi_ran(b.variant, shape, b.tokens),
                    _ => {}
                }
                e
            })
            .collect(),
        Err(e) => json!({ "error": e.to_string() }),
    }
}

/// The commit this binary was built from (build.rs).
fn git_sha() -> &'static str {
    env!("MARLIN_GIT_SHA")
}

pub fn run(a: BenchKernelsArgs) -> Result<()> {
    if a.iters == 0 {
        bail!("--iters must be at least 1");
    }
    if a.gemv_tokens.contains(&0) {
        bail!("--gemv-tokens counts must be at least 1");
    }
    let formats = formats(&a.formats)?;
    let shapes = match (a.rows, a.cols) {
        (Some(r), Some(c)) if r > 0 && c > 0 => vec![(r, c)],
        (None, None) => DEFAULT_SHAPES.to_vec(),
        _ => bail!("--rows and --cols go together and must be at least 1"),
    };
    let ctx = open(&a.device)?;
    let copy = copy_bandwidth(&ctx).context("measuring copy bandwidth")?;
    let copy_read = copy.gb_s / 2.0;
    let stream = stream_bandwidth(&ctx).context("measuring shader bandwidth")?;
    let mut results = Vec::new();
    for &shape in &shapes {
        for &f in &formats {
            results.push(measure(&ctx, &a, f, shape, copy_read, stream.read_gb_s));
        }
    }
    let s = &ctx.summary;
    let json = json!({
        "adapter": s.name,
        "backend": s.backend,
        "device_type": s.device_type,
        "driver": s.driver,
        "driver_info": s.driver_info,
        "software": s.software,
        "git_sha": git_sha(),
        "copy_gb_s": copy.gb_s,
        "copy_read_gb_s": copy_read,
        "copy_note": "copy_gb_s counts bytes read + bytes written of a buffer-to-buffer copy; \
                      copy_read_gb_s is half of it, the read rate GEMV gb_s compares with",
        "copy_bytes": copy.bytes,
        "copy_timer": format!("{:?}", copy.timer).to_lowercase(),
        "stream_copy_gb_s": stream.copy_gb_s,
        "stream_read_gb_s": stream.read_gb_s,
        "stream_note": "compute-shader streams over one buffer: copy counts read + write, \
                        read is a load-only pass (the GEMV's practical ceiling)",
        "gemv_note": "gemv gb_s = (weight bytes in GPU layout + x + out) / time",
        "gemv_tokens_note": "gemv_tokens: per token count the engine's kernel (then the gemm \
                             it replaces); gb_s = (weights once + x and out of every token) \
                             / step time, flat us = the Marlin property",
        "iters": a.iters,
        "results": results,
    });
    println!("{json}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_format_lists_and_rejects_unknown_names() {
        let names = ["q4_0".to_string(), " Q4_K".to_string(), "f16".to_string()];
        assert_eq!(
            formats(&names).unwrap(),
            [QuantFormat::Q4_0, QuantFormat::Q4_K, QuantFormat::F16]
        );
        let err = formats(&["q9_9".to_string()]).unwrap_err().to_string();
        assert!(err.contains("unknown format `q9_9`"), "{err}");
    }

    /// `--gemv-tokens 1,4,80`: the device's kernel per count (80 is past gemv_multi's 64),
    /// the GEMM beside gemv_multi, one JSON entry per case (on lavapipe where present).
    #[test]
    fn gemv_tokens_curve_names_each_kernel() {
        let Ok(ctx) = open("gpu") else { return };
        let cases = token_cases(&ctx, &[1, 4, 80]);
        let want = [(1, None), (4, None), (4, Some(Op::Gemm)), (80, None)];
        let got: Vec<(usize, Option<Op>)> = cases.iter().map(|c| (c.tokens, c.op)).collect();
        assert_eq!(got, want);
        let a = BenchKernelsArgs {
            device: "gpu".into(),
            rows: None,
            cols: None,
            formats: vec![],
            iters: 1,
            gemm_tokens: 0,
            gemv_tokens: vec![1, 4, 80],
        };
        let v = tokens_curve(&ctx, &a, QuantFormat::Q8_0, (40, 256), 100.0);
        let kernels: Vec<&str> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kernel"].as_str().unwrap())
            .collect();
        assert_eq!(
            kernels,
            ["gemv_q8_0", "gemv_multi_q8_0", "gemm_q8_0", "gemm_q8_0"]
        );
        assert_eq!(v[1]["tokens"], 4);
        // The GEMMs say which kernel flavour, tile and splits ran (plain on lavapipe), the
        // gemv_multi which width; a GEMV says nothing more.
        assert_eq!(v[2]["ran"]["tile"], json!([64, 16]));
        assert_eq!(v[2]["ran"]["splits"], 1);
        assert_eq!(
            v[1]["ran"]["rows_per_workgroup"], 16,
            "40 rows: the narrow form"
        );
        assert!(v[0].get("ran").is_none());
        assert!(v[1]["gb_s"].as_f64().unwrap() > 0.0);
    }

    /// The coop GEMM reports its token tile by count; other variants run as asked.
    #[test]
    fn gemm_ran_names_the_coop_tile() {
        if std::env::var_os("MARLIN_GPU_COOP_TILE").is_some() {
            return;
        }
        let small = gemm_ran(Variant::Coop, (4096, 4096), 16);
        assert_eq!(small["variant"], "coop_t16");
        assert_eq!(small["tile"], json!([32, 16]));
        let chunked = if coop_kmajor() {
            "coop_chunked_kmajor"
        } else {
            "coop_chunked"
        };
        assert_eq!(small["body"], chunked);
        assert_eq!(
            gemm_ran(Variant::Coop, (28672, 4096), 32)["variant"],
            "coop_t32"
        );
        let big = gemm_ran(Variant::Coop, (28672, 4096), 512);
        assert_eq!(big["variant"], "coop_t128");
        assert_eq!(big["tile"], json!([128, 128]));
        let mid = gemm_ran(Variant::Coop, (28672, 4096), 64);
        assert_eq!(mid["variant"], "coop");
        assert_eq!(mid["tile"], json!([128, 64]));
        let plain = gemm_ran(Variant::Plain, (4096, 4096), 512);
        assert_eq!(plain["body"], "tiled");
        assert_eq!(plain["tile"], json!([64, 16]));
    }

    #[test]
    fn refuses_the_cpu_and_bad_selectors() {
        let err = open("cpu").err().unwrap().to_string();
        assert!(err.contains("--device gpu"), "{err}");
        assert!(open("tpu").is_err());
    }
}
