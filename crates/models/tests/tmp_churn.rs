mod moe_common;
use marlin_models::gpu_forward::marlin_gpu::{DeviceSelector, GpuContext};
use marlin_models::{GpuKvCache, GpuModel, LogitsRequest, SeqInput};
use moe_common::{load, tiny};
use std::sync::Arc;

#[test]
fn churn() {
    let ctx = Arc::new(GpuContext::new(DeviceSelector::Gpu).unwrap().unwrap());
    let model = load(&tiny("glm4_moe_lite"));
    for (grouped, cap) in [
        (usize::MAX, 1u64 << 30),
        (1, 1 << 30),
        (usize::MAX, 200_000),
        (1, 200_000),
    ] {
        let gpu = GpuModel::new(ctx.clone(), &model)
            .unwrap()
            .with_moe_grouped_min(grouped);
        ctx.pool().set_idle_cap(cap);
        let gkv = GpuKvCache::new(&gpu, 8).unwrap();
        let table: Vec<u32> = (0..8).collect();
        let prompt: Vec<u32> = (0..40u32).map(|i| (i * 7 + 3) % 100).collect();
        let mut line = format!("grouped {grouped} cap {cap}:");
        for rep in 0..3 {
            let seq = SeqInput {
                tokens: &prompt,
                start_pos: 0,
                block_table: &table,
                logits: LogitsRequest::Last,
            };
            gpu.forward(&[seq], &gkv).unwrap();
            let mut created = Vec::new();
            for i in 0..6 {
                let before = ctx.pool().stats().created;
                let seq = SeqInput {
                    tokens: &[5],
                    start_pos: 40 + i,
                    block_table: &table,
                    logits: LogitsRequest::Last,
                };
                gpu.forward(&[seq], &gkv).unwrap();
                created.push(ctx.pool().stats().created - before);
            }
            line += &format!(" rep{rep} {created:?}");
        }
        eprintln!("{line}");
    }
}
