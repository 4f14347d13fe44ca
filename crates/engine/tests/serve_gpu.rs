//! The serving engine on the GPU (lavapipe in CI) with SmolLM2-135M: a batch of greedy
//! requests (argmax-only readback) and an n = 2 request with logprobs (full logits, fork,
//! GPU copy-on-write of the shared prompt block) give the tokens of one-at-a-time runs.
//! Batched decode steps (and short prompts) run the small-batch GEMV (gemv_multi); the
//! same batch through the GEMM alone gives the same tokens.

mod gpu_common;

use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::Duration;

use marlin_engine::sampler::SamplingParams;
use marlin_engine::serve::{EngineConfig, EngineHandle, Event, GenRequest};
use marlin_models::gpu_forward::marlin_gpu::Op;
use marlin_models::{Device, GpuModel};

fn run(e: &EngineHandle, reqs: Vec<GenRequest>) -> Vec<Vec<Vec<u32>>> {
    let rxs: Vec<_> = reqs
        .into_iter()
        .map(|r| {
            let n = r.n;
            let (tx, rx) = channel();
            let g = e
                .submit(r, Box::new(move |ev: Event| tx.send(ev).is_ok()))
                .unwrap();
            (g, rx, n)
        })
        .collect();
    rxs.into_iter()
        .map(|(_g, rx, n)| {
            let mut ids = vec![Vec::new(); n];
            loop {
                match rx.recv_timeout(Duration::from_secs(120)).unwrap() {
                    Event::Token { index, id, .. } => ids[index].push(id),
                    Event::Done(_) => return ids,
                    Event::Error(m) => panic!("{m}"),
                    Event::Finished { .. } => {}
                }
            }
        })
        .collect()
}

#[test]
fn gpu_batches_and_forks_match_single_requests() {
    let Some(ctx) = gpu_common::gpu_ctx() else {
        return;
    };
    let model = gpu_common::load("default");
    let gpu = Arc::new(GpuModel::new(Arc::clone(&ctx), &model).unwrap());
    let cfg = EngineConfig {
        num_blocks: 64,
        ..EngineConfig::default()
    };
    let e = EngineHandle::start(model.clone(), Device::Gpu(gpu), cfg).unwrap();
    let prompts: Vec<Vec<u32>> = ["The capital of France is", "1, 2, 3,", "Hello, my name"]
        .iter()
        .map(|p| model.encode_prompt(p).unwrap())
        .collect();
    let req = |p: &Vec<u32>, n, logprobs| GenRequest {
        prompt: p.clone(),
        params: SamplingParams {
            max_tokens: 5,
            ignore_eos: true,
            ..SamplingParams::default()
        },
        n,
        logprobs,
    };
    let single: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| run(&e, vec![req(p, 1, None)]).remove(0).remove(0))
        .collect();
    // Three sequences per decode step: the small-batch GEMV, not the GEMM.
    assert_eq!(ctx.matmul_op(prompts.len()), Op::GemvMulti);
    let batched = run(&e, prompts.iter().map(|p| req(p, 1, None)).collect());
    for (b, s) in batched.iter().zip(&single) {
        assert_eq!(&b[0], s);
    }
    // gemv_multi off: prompts and decode steps through the GEMM give the same tokens.
    let multi_max = ctx.gemv_multi_max();
    ctx.set_gemv_multi_max(0);
    assert_eq!(ctx.matmul_op(prompts.len()), Op::Gemm);
    let gemm = run(&e, prompts.iter().map(|p| req(p, 1, None)).collect());
    ctx.set_gemv_multi_max(multi_max);
    assert_eq!(gemm, batched);
    let forked = run(&e, vec![req(&prompts[0], 2, Some(1))]).remove(0);
    assert_eq!(forked[0], single[0]);
    assert_eq!(forked[1], single[0]);
    let t = std::time::Instant::now();
    while e.stats().requests_in_flight > 0 || e.stats().seqs_running > 0 {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(5));
    }
    let s = e.stats();
    assert_eq!(s.kv_blocks_used, 0, "{s:?}");
}
