//! Flash prefill attention on cooperative matrices (`attn_flash`) against the f64
//! reference: whole prompts longer than one 64-query block, chunks after a cached prefix,
//! two sequences in one step, GQA, sliding windows, head sizes 16..128, guard regions.
//! On lavapipe (no cooperative matrices) the kernel runs with its matrix operations
//! emulated (coop_emu) and head sizes up to 64 (its 32 KiB of workgroup memory); where the
//! device has them, the real kernel through its launcher. Q and P round to f16 on the
//! tensor cores, hence the NMSE bound.

mod attn_case;
mod coop_emu;
mod testkit;

use attn_case::{case, AttnInputs, Runner, Seq};
use marlin_core::QuantFormat;
use marlin_gpu::registry::attn_flash_spec;
use marlin_gpu::wgpu;
use marlin_gpu::{
    attn_flash_supported, record_attention_flash, CacheDtype, GpuContext, KernelKey, Op,
    StepEncoder, Variant, ATTN_FLASH_BLOCK,
};

/// NMSE of f16 Q and P against the f64 reference (measured on lavapipe: ~6e-8).
const TOL: f64 = 5e-6;

fn seqs_cases() -> Vec<(Vec<Seq>, Option<usize>)> {
    let whole = |n| Seq {
        n_pos: n,
        q_from: 0,
    };
    vec![
        (vec![whole(150)], None),
        (vec![whole(150)], Some(40)),
        // A chunk after a cached prefix, and a second sequence in the same step.
        (
            vec![
                Seq {
                    n_pos: 200,
                    q_from: 131,
                },
                whole(21),
            ],
            None,
        ),
        (
            vec![
                Seq {
                    n_pos: 70,
                    q_from: 69,
                },
                whole(3),
            ],
            Some(7),
        ),
    ]
}

fn run_all(ctx: &GpuContext, max_hd: usize, run: Runner<'_>) {
    for hd in [16, 32, 64, 128].into_iter().filter(|&h| h <= max_hd) {
        for (heads, kv) in [(4, 2), (3, 1), (2, 2)] {
            for (seqs, window) in seqs_cases() {
                let dims = (CacheDtype::F16, heads, kv, hd);
                case(ctx, dims, &seqs, window, ATTN_FLASH_BLOCK, TOL, run);
            }
        }
    }
}

/// The emulated kernel of head sizes up to `max_hd`, compiled for the test adapter.
fn emulated(ctx: &GpuContext, max_hd: u32) -> wgpu::ComputePipeline {
    let key = KernelKey {
        op: Op::AttnFlash,
        format: QuantFormat::F32,
        variant: Variant::Coop,
    };
    let spec = attn_flash_spec(key, max_hd).expect("spec");
    coop_emu::compile(ctx, &spec).pipe
}

fn dispatch_emulated(ctx: &GpuContext, pipe: &wgpu::ComputePipeline, i: &AttnInputs<'_>) {
    let s = &i.shape;
    // attn_params' words (cache dtype code 1: f16), q from 0, then blocks and out offsets.
    let window = s.window.map_or(0, |w| w as u32) | 1 << 30;
    let params: [u32; 8] = [
        s.n_heads as u32 | (s.n_kv_heads as u32) << 16,
        s.q_stride as u32,
        s.head_dim as u32,
        s.scale.to_bits(),
        window,
        i.meta.offset as u32,
        i.blocks.offset as u32,
        i.out.offset as u32,
    ];
    let pb = coop_emu::upload_params(ctx, &params);
    let bufs = [&pb, i.q, i.k_cache, i.v_cache, i.meta.buffer, i.out.buffer];
    let grid = [s.n_heads as u32, i.n_blocks as u32, 1];
    coop_emu::dispatch(ctx, pipe, &bufs, grid);
}

#[test]
fn emulated_flash_attention_matches_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    if !ctx.features.shader_f16 {
        eprintln!("no SHADER_F16: emulated attn_flash skipped");
        return;
    }
    let pipe = emulated(ctx, 64);
    run_all(ctx, 64, &|ctx, i| dispatch_emulated(ctx, &pipe, i));
}

#[test]
fn flash_attention_on_tensor_cores_matches_reference() {
    let Some(ctx) = testkit::ctx() else { return };
    let probe = StepEncoder::new(ctx, "probe");
    let shape = marlin_gpu::AttnShape {
        n_tokens: 1,
        n_heads: 1,
        n_kv_heads: 1,
        head_dim: 64,
        q_stride: 64,
        scale: 1.0,
        window: None,
        dtype: CacheDtype::F16,
    };
    if !attn_flash_supported(&probe, &shape) {
        eprintln!("no cooperative matrices: attn_flash on hardware skipped");
        return;
    }
    drop(probe);
    run_all(ctx, 128, &|ctx, i| {
        let mut enc = StepEncoder::new(ctx, "t");
        record_attention_flash(
            &mut enc, &i.shape, i.q, i.k_cache, i.v_cache, i.meta, i.blocks, i.n_blocks, i.out,
        )
        .expect("attn_flash");
        enc.submit().expect("submit");
    });
}
