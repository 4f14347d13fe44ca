//! Shared by the GPU end-to-end tests: the adapter (skipped with `MARLIN_SKIP_GPU=1` when
//! none exists), model loading and token id lists from JSON fixtures.
#![allow(dead_code)]

use std::sync::Arc;

use marlin_engine::Engine;
use marlin_models::gpu_forward::marlin_gpu::{DeviceSelector, GpuContext};
use marlin_models::{Device, GpuModel, LogitsRequest, Model};

/// The adapter `DeviceSelector::Gpu` opens (lavapipe in CI), or `None` to skip.
pub fn gpu_ctx() -> Option<Arc<GpuContext>> {
    match GpuContext::new(DeviceSelector::Gpu) {
        Ok(Some(c)) => Some(Arc::new(c)),
        _ if std::env::var("MARLIN_SKIP_GPU").as_deref() == Ok("1") => {
            eprintln!("MARLIN_SKIP_GPU=1: no GPU adapter, GPU e2e skipped");
            None
        }
        Ok(None) => panic!("DeviceSelector::Gpu opened no adapter"),
        Err(e) => panic!("no wgpu adapter ({e}): install lavapipe or set MARLIN_SKIP_GPU=1"),
    }
}

/// Whether `ctx` runs prompt GEMMs on f16 tensor cores (hardware with cooperative
/// matrices), which rounds their operands to f16: logits tolerances tuned for f32 (lavapipe
/// in CI) then widen.
pub fn f16_gemm(ctx: &GpuContext) -> bool {
    ctx.default_variant(marlin_models::gpu_forward::marlin_gpu::Op::Gemm)
        .is_coop()
}

/// A cached model by name (`default`, `gemma3`).
pub fn load(name: &str) -> Arc<Model> {
    let path = marlin_models::source::resolve_model(name)
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-models.sh)"));
    Arc::new(Model::load(&path, &mut |_, _| {}).expect("load"))
}

/// A JSON array of token ids.
pub fn json_ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

/// The random-weight model `spec` (e.g. `synthetic:smollm2-135m:q4_0`) on the CPU and on the
/// GPU, with the normalized mean squared error of the GPU's prompt logits against the CPU's.
pub struct CpuGpuPair {
    pub cpu: Engine,
    pub gpu: Engine,
    pub nmse: f64,
}

/// Load `spec`, run `prompt` on both devices and compare all prompt logits.
pub fn cpu_gpu_pair(ctx: &Arc<GpuContext>, spec: &str, prompt: &[u32]) -> CpuGpuPair {
    let model = Arc::new(Model::load_spec(spec, &mut |_, _| {}).expect("synthetic"));
    let gm = Arc::new(GpuModel::new(ctx.clone(), &model).expect("upload"));
    let mut cpu = Engine::new(model.clone(), 32);
    let mut gpu = Engine::new(model, 32)
        .with_device(Device::Gpu(gm))
        .expect("gpu kv");
    let want = cpu.prompt_logits(prompt, LogitsRequest::All).expect("cpu");
    let got = gpu.prompt_logits(prompt, LogitsRequest::All).expect("gpu");
    let (mut num, mut den) = (0f64, 0f64);
    for (g, w) in got.data.iter().zip(&want.data) {
        num += f64::from(g - w).powi(2);
        den += f64::from(*w).powi(2);
    }
    CpuGpuPair {
        cpu,
        gpu,
        nmse: num / den.max(1e-30),
    }
}

/// A golden prompt's logits (`"logits"`: one array per position), flattened.
pub fn json_logits(p: &serde_json::Value) -> Vec<f32> {
    p["logits"]
        .as_array()
        .expect("rows")
        .iter()
        .flat_map(|r| r.as_array().expect("row").iter())
        .map(|x| x.as_f64().expect("logit") as f32)
        .collect()
}
