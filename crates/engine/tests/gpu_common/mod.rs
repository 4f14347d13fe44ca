//! Shared by the GPU end-to-end tests: the adapter (skipped with `MARLIN_SKIP_GPU=1` when
//! none exists), model loading and token id lists from JSON fixtures.
#![allow(dead_code)]

use std::sync::Arc;

use marlin_models::gpu_forward::marlin_gpu::{DeviceSelector, GpuContext};
use marlin_models::Model;

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
