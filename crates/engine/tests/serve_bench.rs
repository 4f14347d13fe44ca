//! Aggregate decode throughput of the serving engine on the CPU at 1, 8 and 32 concurrent
//! sequences (SmolLM2-135M, greedy, EOS ignored). A benchmark, not a timed test:
//! `cargo test -p marlin-engine --test serve_bench -- --ignored --nocapture`.

use std::sync::mpsc::channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use marlin_engine::sampler::SamplingParams;
use marlin_engine::serve::{EngineConfig, EngineHandle, Event, GenRequest};
use marlin_models::{Device, Model};

#[test]
#[ignore]
fn cpu_decode_throughput_by_concurrency() {
    let path = marlin_models::source::resolve_model("default").unwrap();
    let model = Arc::new(Model::load(&path, &mut |_, _| {}).unwrap());
    let prompt = model.encode_prompt("Write a story about the sea.").unwrap();
    let tokens = 64;
    for invariant in [true, false] {
        for conc in [1usize, 8, 32] {
            let cfg = EngineConfig {
                batch_invariant: invariant,
                ..EngineConfig::default()
            };
            let e = EngineHandle::start(model.clone(), Device::Cpu, cfg).unwrap();
            let t = Instant::now();
            let subs: Vec<_> = (0..conc)
                .map(|_| {
                    let (tx, rx) = channel();
                    let params = SamplingParams {
                        max_tokens: tokens,
                        ignore_eos: true,
                        ..SamplingParams::default()
                    };
                    let req = GenRequest {
                        prompt: prompt.clone(),
                        params,
                        n: 1,
                        logprobs: None,
                    };
                    let g = e
                        .submit(req, Box::new(move |ev: Event| tx.send(ev).is_ok()))
                        .unwrap();
                    (g, rx)
                })
                .collect();
            for (_g, rx) in &subs {
                while !matches!(
                    rx.recv_timeout(Duration::from_secs(300)).unwrap(),
                    Event::Done(_)
                ) {}
            }
            let secs = t.elapsed().as_secs_f64();
            println!(
                "batch_invariant={invariant} concurrency={conc}: {:.1} tok/s aggregate ({:.1} s, {} steps)",
                (conc * tokens) as f64 / secs,
                secs,
                e.stats().steps
            );
        }
    }
}
