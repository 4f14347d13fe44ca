//! `metal-marlin devices`: every GPU adapter wgpu sees (the `N` of `--device gpu:N`) and the
//! CPU backend with its SIMD kernel families.

use anyhow::Result;
use marlin_cpu::matmul::Isa;

/// Print one line per adapter, then the CPU.
pub fn run() -> Result<()> {
    let adapters = marlin_gpu::list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapters found (wgpu sees none; the CPU backend is used)");
    }
    for a in &adapters {
        let kind = if a.software { " (software)" } else { "" };
        println!("{a}{kind}");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let isas: Vec<&str> = Isa::available().into_iter().map(Isa::name).collect();
    println!(
        "cpu: {cores} threads, {} | kernels: {} (best: {})",
        std::env::consts::ARCH,
        isas.join(", "),
        Isa::best().name()
    );
    Ok(())
}
