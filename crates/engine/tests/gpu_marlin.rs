//! Random-weight SmolLM2-shaped models in metal-marlin formats (rows of 576 = two 256
//! blocks and a 64-element tail) on the GPU against the CPU: prompt logits and greedy
//! tokens, through every GPU matmul and embedding kernel of those formats.

mod gpu_common;

use std::sync::Arc;

use gpu_common::gpu_ctx;
use marlin_engine::sampler::SamplingParams;
use marlin_engine::Engine;
use marlin_models::{Device, GpuModel, LogitsRequest, Model};

#[test]
fn marlin_format_models_match_cpu() {
    let Some(ctx) = gpu_ctx() else { return };
    // Two of them (every format's kernels are in crates/gpu's parity tests; each model here
    // costs ~30 s on 2 cores). Measured on lavapipe, logits NMSE: fp4_g128 5e-11, nvfp4 2e-11,
    // fp8 1e-10, int4z_g128 1e-10, int3_g64 9e-11, int2z_g32 2e-11.
    for format in ["fp4_g128", "int3_g64"] {
        let spec = format!("synthetic:smollm2-135m:{format}");
        let model = Arc::new(Model::load_spec(&spec, &mut |_, _| {}).expect("synthetic"));
        let gpu = Arc::new(GpuModel::new(ctx.clone(), &model).expect("upload"));
        let prompt = [1u32, 400, 9000, 17, 3000, 42];
        let mut cpu = Engine::new(model.clone(), 32);
        let mut ge = Engine::new(model.clone(), 32)
            .with_device(Device::Gpu(gpu))
            .expect("gpu kv");
        let want = cpu.prompt_logits(&prompt, LogitsRequest::All).expect("cpu");
        let got = ge.prompt_logits(&prompt, LogitsRequest::All).expect("gpu");
        let (mut num, mut den) = (0f64, 0f64);
        for (g, w) in got.data.iter().zip(&want.data) {
            num += f64::from(g - w).powi(2);
            den += f64::from(*w).powi(2);
        }
        let nmse = num / den.max(1e-30);
        eprintln!("{spec}: logits nmse GPU vs CPU {nmse:e}");
        assert!(nmse < 1e-3, "{spec}: nmse {nmse:e}");
        let params = SamplingParams {
            max_tokens: 4,
            ignore_eos: true,
            ..Default::default()
        };
        let a = cpu
            .generate(&prompt, &params, &mut |_| {})
            .expect("cpu gen");
        let b = ge.generate(&prompt, &params, &mut |_| {}).expect("gpu gen");
        assert_eq!(a.token_ids, b.token_ids, "{spec}: greedy tokens");
    }
}
