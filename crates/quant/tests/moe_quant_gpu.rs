//! Quantized MoE / MLA checkpoints made by our quantizer on the GPU (lavapipe in CI;
//! `MARLIN_SKIP_GPU=1` skips when no adapter): the tiny GLM-4.7-Flash and Qwen3-MoE quantized
//! with layer-by-layer GPTQ upload and compute the same prompt logits as the CPU on the same
//! checkpoint. (The GPU MoE refuses rotated experts, so MR-GPTQ / --hadamard MoE checkpoints
//! run on the CPU only for now.)

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use marlin_core::QuantFormat;
use marlin_models::gpu_forward::marlin_gpu::{DeviceSelector, GpuContext};
use marlin_models::{GpuKvCache, GpuModel, LogitsRequest, SeqInput};
use marlin_quant::layerwise::{CalibrationText, Calibrator};
use marlin_quant::plan::{Method, PlanOptions};
use marlin_quant::quantize::{quantize, QuantizeJob};

fn gpu_ctx() -> Option<Arc<GpuContext>> {
    match GpuContext::new(DeviceSelector::Gpu) {
        Ok(Some(c)) => Some(Arc::new(c)),
        _ if std::env::var("MARLIN_SKIP_GPU").as_deref() == Ok("1") => None,
        other => panic!("no wgpu adapter: {:?}", other.err()),
    }
}

#[test]
fn quantized_moe_checkpoints_match_the_cpu_on_the_gpu() {
    let Some(ctx) = gpu_ctx() else { return };
    for name in ["glm4_moe_lite", "qwen3_moe"] {
        let path = tiny(name);
        let src = load(&path);
        let ids = src.tokenizer.encode(&english()[..6000], false).unwrap();
        let t = CalibrationText {
            tokens: ids,
            bos: None,
            samples: 4,
            seq_len: 32,
            source: "english.txt".into(),
        };
        let out = scratch(&format!("moe-gpu-{name}")).join("ck");
        let job = QuantizeJob {
            model: &src,
            source: &path,
            out: &out,
            plan: PlanOptions {
                format: QuantFormat::from_name("int4_g32").unwrap(),
                method: Method::Gptq,
                hadamard: 0,
                preset: None,
                overrides: vec![],
            },
            calibration: Some(Calibrator::new(&src, &t).unwrap()),
        };
        quantize(job, &mut |_, _, _| {}).unwrap();
        let q = load(&out);
        assert!(q.weights.blocks[1].decode_bytes(1) > 0);
        let ev = eval_ids(&q, &english());
        let ev = &ev[..24];
        let cpu = logits(&q, ev);
        let gpu = GpuModel::new(ctx.clone(), &q).unwrap();
        let gkv = GpuKvCache::new(&gpu, 2).unwrap();
        let seq = SeqInput {
            tokens: ev,
            start_pos: 0,
            block_table: &[0, 1],
            logits: LogitsRequest::All,
        };
        let on_gpu = gpu.forward(&[seq], &gkv).unwrap().data;
        // The CPU's int4 kernel multiplies 8-bit activations, the GPU f32 ones (see
        // smollm2_e2e.rs); measured NMSE 4.7e-4 (glm) and 3.2e-3 (qwen3_moe).
        let e = nmse(&cpu, &on_gpu);
        let v = q.config.vocab;
        let top = |x: &[f32]| {
            x.iter()
                .enumerate()
                .fold(0, |b, (i, &y)| if y > x[b] { i } else { b })
        };
        let same = cpu
            .chunks_exact(v)
            .zip(on_gpu.chunks_exact(v))
            .filter(|(a, b)| top(a) == top(b))
            .count();
        eprintln!("{name} int4_g32 gptq: GPU vs CPU logits NMSE {e:e}, top-1 same {same}/24");
        assert!(e < 1e-2, "{name}: GPU vs CPU NMSE {e}");
        assert!(same >= 22, "{name}: top-1 agrees on {same} of 24 positions");
        let _ = std::fs::remove_dir_all(out.parent().unwrap_or(Path::new(".")));
    }
}
