//! Quick matmul speed check (not a timed test): GEMV GB/s and GEMM GFLOP/s on SmolLM2-135M
//! shapes, plus a matmul-only estimate of that model's decode/prefill tok/s.
//!
//! `cargo run --release -p marlin-cpu --example matmul_speed [-- --isa scalar|avx2|avxvnni]
//! [--format q4_1] [--summary] [--inside]` (`--inside`: call from a rayon worker thread).

use std::time::Instant;

use marlin_core::{formats, QTensor, QuantFormat};
use marlin_cpu::matmul::{matmul_with, Isa};

fn weights(format: QuantFormat, rows: usize, cols: usize) -> QTensor {
    let v: Vec<f32> = (0..rows * cols)
        .map(|i| ((i.wrapping_mul(2654435761) % 1000) as f32 - 500.0) * 1e-3)
        .collect();
    formats::quantize_tensor(format, &[rows, cols], &v).expect("quantize")
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

/// Fastest seconds per call over `iters` calls (after a warm-up). With one pool thread the
/// calling thread's CPU time is used, so time-slicing on a busy machine does not count.
fn time(isa: Isa, w: &QTensor, x: &[f32], n: usize, iters: usize) -> f64 {
    let mut out = vec![0f32; w.shape[0] * n];
    matmul_with(isa, w, x, n, &mut out).expect("matmul");
    let single = rayon::current_num_threads() == 1 && rayon::current_thread_index().is_some();
    let mut t: Vec<f64> = (0..iters)
        .map(|_| {
            let (s, c) = (Instant::now(), cpu_time());
            matmul_with(isa, w, x, n, &mut out).expect("matmul");
            match (single, c, cpu_time()) {
                (true, Some(a), Some(b)) => b - a,
                _ => s.elapsed().as_secs_f64(),
            }
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[0]
}

fn main() {
    if std::env::args().any(|a| a == "--inside") {
        // Calls from a pool worker skip rayon's cross-thread injection and wake-up.
        let pool = rayon::ThreadPoolBuilder::new().build().expect("pool");
        pool.install(run);
    } else {
        run();
    }
}

fn run() {
    let args: Vec<String> = std::env::args().collect();
    let isa = args
        .iter()
        .position(|a| a == "--isa")
        .and_then(|i| {
            Isa::available()
                .into_iter()
                .find(|isa| isa.name() == args[i + 1])
        })
        .unwrap_or_else(Isa::best);
    println!(
        "isa {} threads {}",
        isa.name(),
        rayon::current_num_threads()
    );
    use QuantFormat::*;
    let shapes = [(576, 1536), (1536, 576), (576, 576), (49152, 576)];
    let only: Option<QuantFormat> = args
        .iter()
        .position(|a| a == "--format")
        .and_then(|i| QuantFormat::from_name(&args[i + 1]));
    let skip_table = args.iter().any(|a| a == "--summary");
    for format in [Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K, Q5_0, F16] {
        if skip_table || only.is_some_and(|o| o != format) {
            continue;
        }
        for &(rows, cols) in &shapes {
            if cols % format.block_elems() != 0 {
                continue;
            }
            let w = weights(format, rows, cols);
            let x1: Vec<f32> = (0..cols).map(|i| (i % 7) as f32 * 0.1 - 0.3).collect();
            let iters = (200_000_000 / w.bytes().len()).clamp(5, 2000);
            let t = time(isa, &w, &x1, 1, iters);
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
                let t = time(isa, &w, &x, n, 12);
                let gf = 2.0 * (rows * cols * n) as f64 / t / 1e9;
                line += &format!("   gemm512 {:8.2} ms {gf:6.1} GFLOP/s", t * 1e3);
            }
            println!("{line}");
        }
    }
    smollm2(isa);
}

/// Matmul-only estimate for SmolLM2-135M: 30 layers of distinct Q4_1 weights (q, o 576²;
/// k, v 192×576; gate, up 1536×576; down 576×1536) and the tied Q8_0 49152×576 lm_head, run
/// in model order so weights stream from memory as in real decoding.
fn smollm2(isa: Isa) {
    let layer = [
        (576, 576),
        (192, 576),
        (192, 576),
        (576, 576),
        (1536, 576),
        (1536, 576),
        (576, 1536),
    ];
    let ws: Vec<QTensor> = (0..30)
        .flat_map(|_| layer.iter().map(|&(r, c)| weights(QuantFormat::Q4_1, r, c)))
        .collect();
    let head = weights(QuantFormat::Q8_0, 49152, 576);
    let run = |n: usize, with_head: bool| {
        let x = vec![0.1f32; 1536 * n];
        let mut out = vec![0f32; 49152 * n];
        let s = Instant::now();
        for w in &ws {
            let (r, c) = (w.shape[0], w.shape[1]);
            matmul_with(isa, w, &x[..c * n], n, &mut out[..r * n]).expect("matmul");
        }
        let layers = s.elapsed().as_secs_f64();
        if with_head {
            matmul_with(isa, &head, &x[..576], 1, &mut out[..49152]).expect("matmul");
        }
        (layers, s.elapsed().as_secs_f64() - layers)
    };
    let best = |n: usize, reps: usize, head: bool| {
        (0..reps)
            .map(|_| run(n, head))
            .fold((f64::MAX, f64::MAX), |a, b| (a.0.min(b.0), a.1.min(b.1)))
    };
    let (dl, dh) = best(1, 20, true);
    let (pl, ph) = best(512, 2, true);
    println!(
        "SmolLM2-135M matmuls only: decode {:.1} tok/s ({:.2} ms layers + {:.2} ms lm_head), \
         prefill-512 {:.1} tok/s ({:.1} ms)",
        1.0 / (dl + dh),
        dl * 1e3,
        dh * 1e3,
        512.0 / (pl + ph),
        (pl + ph) * 1e3
    );
}
