//! GLM-4.7-Flash at its real widths, cut to two layers (the dense one and one MoE layer),
//! on an adapter with cooperative matrices against the CPU: a 320-token prompt averages 19
//! slots per expert (64 routed and the shared one), so the routed experts run on
//! `moe_gemm` (q4_0; trellis3 grouped by matrix), and MLA's per-head matrices too, then two
//! decode steps. The tiny test models'
//! matrices are shorter than a coop row tile and lavapipe has no cooperative matrices, so
//! this is the model-level check of those paths; without such an adapter it says it is
//! skipped and passes (it runs in the device runs, see the README).

use std::sync::Arc;

use marlin_core::QuantFormat;
use marlin_models::gpu_forward::marlin_gpu::{list_adapters, DeviceSelector, GpuContext};
use marlin_models::kv_cache::KvCache;
use marlin_models::synthetic::{build_preset, Preset};
use marlin_models::{GpuKvCache, GpuModel, LogitsRequest, Model, SeqInput};

fn coop_ctx() -> Option<Arc<GpuContext>> {
    let a = list_adapters().into_iter().find(|a| a.coop_gemm())?;
    let ctx = GpuContext::new(DeviceSelector::GpuIndex(a.index)).ok()??;
    Some(Arc::new(ctx))
}

fn nmse(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let num: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x - y).powi(2)).sum();
    let den: f64 = b.iter().map(|y| f64::from(*y).powi(2)).sum();
    num / den.max(1e-30)
}

/// The last prompt position's logits, then those of two decode steps, on the GPU or CPU.
fn run(model: &Model, gpu: Option<&GpuModel>, prompt: &[u32]) -> Vec<f32> {
    let mut kv = KvCache::for_tokens(&model.config, prompt.len() + 2);
    let table: Vec<u32> = (0..kv.num_blocks() as u32).collect();
    let gkv = gpu.map(|g| GpuKvCache::new(g, kv.num_blocks()).unwrap());
    let mut out = Vec::new();
    for (tokens, start_pos) in [
        (prompt, 0),
        (&[17][..], prompt.len()),
        (&[99][..], prompt.len() + 1),
    ] {
        let seq = SeqInput {
            tokens,
            start_pos,
            block_table: &table,
            logits: LogitsRequest::Last,
        };
        out.extend(match (gpu, &gkv) {
            (Some(g), Some(gkv)) => g.forward(&[seq], gkv).unwrap().data,
            _ => model.forward(&[seq], &mut kv).unwrap().data,
        });
    }
    out
}

#[test]
fn glm47_flash_prompt_on_tensor_cores_matches_cpu() {
    let Some(ctx) = coop_ctx() else {
        eprintln!("glm47_flash_coop: SKIPPED (no adapter with cooperative matrices)");
        return;
    };
    let base = Preset::by_name("glm47-flash").unwrap();
    let preset = Preset {
        n_layers: 2,
        ..*base
    };
    let prompt: Vec<u32> = (0..320).map(|i| (i * 7919 + 13) % 150_000).collect();
    for name in ["q4_0", "trellis3"] {
        let format = QuantFormat::from_name(name).unwrap();
        let model = build_preset(&preset, format, &mut |_, _| {}).unwrap();
        let gpu = GpuModel::new(ctx.clone(), &model).unwrap();
        let want = run(&model, None, &prompt);
        let got = run(&model, Some(&gpu), &prompt);
        assert!(
            got.iter().all(|v| v.is_finite()),
            "{name}: non-finite logits"
        );
        let e = nmse(&got, &want);
        eprintln!(
            "glm47-flash 2 layers {name}: GPU vs CPU nmse {e:e} (320-token prompt, 2 decode steps)"
        );
        assert!(e < 1e-3, "{name}: nmse {e:e}");
    }
}
