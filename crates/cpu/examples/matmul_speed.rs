//! Quick matmul speed check (not a timed test): GEMV GB/s and GEMM GFLOP/s on SmolLM2-135M
//! shapes, plus a matmul-only estimate of that model's decode/prefill tok/s.
//!
//! `cargo run --release -p marlin-cpu --example matmul_speed [-- --isa scalar|avx2|avxvnni]
//! [--format q4_1] [--summary] [--inside]` (`--inside`: call from a rayon worker thread).
//! With `RAYON_NUM_THREADS=1 ... --inside` per-call times are thread CPU time, which keeps
//! the numbers steady on a busy machine.

use std::time::Instant;

use marlin_core::{formats, QTensor, QuantFormat};
use marlin_cpu::matmul::{matmul_with, Isa};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn weights(format: QuantFormat, rows: usize, cols: usize) -> Res<QTensor> {
    let v: Vec<f32> = (0..rows * cols)
        .map(|i| ((i.wrapping_mul(2654435761) % 1000) as f32 - 500.0) * 1e-3)
        .collect();
    Ok(formats::quantize_tensor(format, &[rows, cols], &v)?)
}

/// Seconds this thread has run on a CPU, if the clock is readable.
fn cpu_time() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

/// Fastest seconds per call over `iters` calls (after a warm-up). With one pool thread and
/// a call from inside the pool, the calling thread's CPU time is used instead of wall time.
fn time(isa: Isa, w: &QTensor, x: &[f32], n: usize, iters: usize) -> Res<f64> {
    let mut out = vec![0f32; w.shape[0] * n];
    matmul_with(isa, w, x, n, &mut out)?;
    let single = rayon::current_num_threads() == 1 && rayon::current_thread_index().is_some();
    let mut best = f64::MAX;
    for _ in 0..iters {
        let (s, c) = (Instant::now(), cpu_time());
        matmul_with(isa, w, x, n, &mut out)?;
        let t = match (single, c, cpu_time()) {
            (true, Some(a), Some(b)) => b - a,
            _ => s.elapsed().as_secs_f64(),
        };
        best = best.min(t);
    }
    Ok(best)
}

fn main() -> Res<()> {
    if std::env::args().any(|a| a == "--inside") {
        // Calls from a pool worker skip rayon's cross-thread injection and wake-up.
        rayon::ThreadPoolBuilder::new().build()?.install(run)
    } else {
        run()
    }
}

fn run() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        let i = args.iter().position(|a| a == flag)?;
        args.get(i + 1).cloned()
    };
    let isa = value("--isa")
        .and_then(|name| Isa::available().into_iter().find(|i| i.name() == name))
        .unwrap_or_else(Isa::best);
    let only = value("--format").and_then(|f| QuantFormat::from_name(&f));
    println!(
        "isa {} threads {}",
        isa.name(),
        rayon::current_num_threads()
    );
    use QuantFormat::*;
    let shapes = [(576, 1536), (1536, 576), (576, 576), (49152, 576)];
    let skip_table = args.iter().any(|a| a == "--summary");
    for format in [Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K, Q5_0, F16] {
        if skip_table || only.is_some_and(|o| o != format) {
            continue;
        }
        for &(rows, cols) in &shapes {
            if cols % format.block_elems() != 0 {
                continue;
            }
            let w = weights(format, rows, cols)?;
            let x1: Vec<f32> = (0..cols).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
            let iters = (200_000_000 / w.bytes().len()).clamp(5, 2000);
            let t = time(isa, &w, &x1, 1, iters)?;
            let gbs = w.bytes().len() as f64 / t / 1e9;
            let mut line = format!(
                "{format:>5} {rows:>5}x{cols:<5} gemv {:8.1} us {gbs:6.1} GB/s",
                t * 1e6
            );
            if rows < 10_000 {
                let n = 512;
                let x: Vec<f32> = (0..cols * n)
                    .map(|i| (i % 13) as f32 * 0.05 - 0.3)
                    .collect();
                let t = time(isa, &w, &x, n, 12)?;
                let gf = 2.0 * (rows * cols * n) as f64 / t / 1e9;
                line += &format!("   gemm512 {:8.2} ms {gf:6.1} GFLOP/s", t * 1e3);
            }
            println!("{line}");
        }
    }
    smollm2(isa)
}

/// Matmul-only estimate for SmolLM2-135M: 30 layers of distinct Q4_1 weights (q, o 576²;
/// k, v 192×576; gate, up 1536×576; down 576×1536) and the tied Q8_0 49152×576 lm_head, run
/// in model order so weights stream from memory as in real decoding (wall time).
fn smollm2(isa: Isa) -> Res<()> {
    let layer = [
        (576, 576),
        (192, 576),
        (192, 576),
        (576, 576),
        (1536, 576),
        (1536, 576),
        (576, 1536),
    ];
    let mut ws = Vec::new();
    for _ in 0..30 {
        for &(r, c) in &layer {
            ws.push(weights(QuantFormat::Q4_1, r, c)?);
        }
    }
    let head = weights(QuantFormat::Q8_0, 49152, 576)?;
    let run = |n: usize| -> Res<(f64, f64)> {
        let x = vec![0.1f32; 1536 * n];
        let mut out = vec![0f32; 49152 * n];
        let s = Instant::now();
        for w in &ws {
            let (r, c) = (w.shape[0], w.shape[1]);
            matmul_with(isa, w, &x[..c * n], n, &mut out[..r * n])?;
        }
        let layers = s.elapsed().as_secs_f64();
        // Only the last token needs logits, in prefill too.
        matmul_with(isa, &head, &x[..576], 1, &mut out[..49152])?;
        Ok((layers, s.elapsed().as_secs_f64() - layers))
    };
    let best = |n: usize, reps: usize| -> Res<(f64, f64)> {
        let mut b = (f64::MAX, f64::MAX);
        for _ in 0..reps {
            let (l, h) = run(n)?;
            b = (b.0.min(l), b.1.min(h));
        }
        Ok(b)
    };
    let (dl, dh) = best(1, 20)?;
    let (pl, ph) = best(512, 3)?;
    println!(
        "SmolLM2-135M matmuls only: decode {:.1} tok/s ({:.2} ms layers + {:.2} ms lm_head), \
         prefill-512 {:.1} tok/s ({:.1} ms)",
        1.0 / (dl + dh),
        dl * 1e3,
        dh * 1e3,
        512.0 / (pl + ph),
        (pl + ph) * 1e3
    );
    Ok(())
}
