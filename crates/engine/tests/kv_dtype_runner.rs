//! The runner's KV dtype: INT8 / FP8 caches run a CPU step (logits close to the F16 cache's),
//! and the GPU refuses them with a clear error instead of silently storing F16.

mod gpu_common;

use std::sync::Arc;

use marlin_engine::runner::Runner;
use marlin_models::kv_cache::KvDtype;
use marlin_models::{Device, GpuModel, LogitsRequest, SeqInput};

#[test]
fn cpu_runs_quantized_kv_and_gpu_refuses_it() {
    let model = gpu_common::load("default");
    let prompt = model.encode_prompt("Paris is the capital of").unwrap();
    let table = [1u32, 0];
    let step = |dtype| {
        let mut r = Runner::with_kv_dtype(model.clone(), Device::Cpu, 2, false, dtype).unwrap();
        let seq = SeqInput {
            tokens: &prompt,
            start_pos: 0,
            block_table: &table,
            logits: LogitsRequest::Last,
        };
        r.forward(&[seq]).unwrap().row(0).to_vec()
    };
    let f16 = step(KvDtype::F16);
    for dtype in [KvDtype::Int8, KvDtype::Fp8E4M3] {
        let q = step(dtype);
        let d = q
            .iter()
            .zip(&f16)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d > 0.0 && d < 6.0, "{dtype:?}: max |Δlogit| {d}");
    }

    let Some(ctx) = gpu_common::gpu_ctx() else {
        return;
    };
    let gpu = Arc::new(GpuModel::new(ctx, &model).unwrap());
    let err = Runner::with_kv_dtype(model.clone(), Device::Gpu(gpu), 4, false, KvDtype::Int8)
        .err()
        .expect("GPU must refuse INT8 KV");
    assert!(
        err.to_string().contains("only implemented on the CPU"),
        "{err}"
    );
}
