//! The serving engine on the real SmolLM2-135M: continuous batching gives the same greedy
//! tokens as one-at-a-time generation (with chunked prefill and preemption), cancellation
//! frees every block, the prefix cache hits and changes nothing, n > 1 forks share the
//! prompt, and the queue bound refuses extra requests.

use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use marlin_engine::sampler::SamplingParams;
use marlin_engine::serve::{EngineConfig, EngineHandle, Event, GenRequest, RequestGuard, Usage};
use marlin_engine::{Engine, Error};
use marlin_models::{Device, Model};

fn model() -> Arc<Model> {
    let path = marlin_models::source::resolve_model("default")
        .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-models.sh)"));
    Arc::new(Model::load(&path, &mut |_, _| {}).unwrap())
}

fn prompt(m: &Model, text: &str) -> Vec<u32> {
    m.encode_prompt(text).unwrap()
}

/// Batch-invariant steps: a sequence's tokens do not depend on its neighbours.
fn cfg() -> EngineConfig {
    EngineConfig {
        batch_invariant: true,
        ..EngineConfig::default()
    }
}

fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        max_tokens,
        ..SamplingParams::default()
    }
}

const PROMPTS: [&str; 6] = [
    "The capital of France is",
    "Once upon a time, in a land far away, there lived a",
    "1, 2, 3, 4,",
    "def fibonacci(n):",
    "The quick brown fox",
    "Water boils at a temperature of",
];

/// Text and tokens per choice, and the usage.
#[derive(Debug, Default, Clone, PartialEq)]
struct Out {
    text: Vec<String>,
    ids: Vec<Vec<u32>>,
    usage: Usage,
}

fn submit(e: &EngineHandle, req: GenRequest) -> (RequestGuard, Receiver<Event>) {
    let (tx, rx) = channel();
    let g = e
        .submit(req, Box::new(move |ev: Event| tx.send(ev).is_ok()))
        .unwrap();
    (g, rx)
}

fn collect(rx: &Receiver<Event>, n: usize) -> Out {
    let mut o = Out {
        text: vec![String::new(); n],
        ids: vec![Vec::new(); n],
        ..Out::default()
    };
    loop {
        match rx.recv_timeout(Duration::from_secs(60)).expect("event") {
            Event::Token {
                index, id, text, ..
            } => {
                o.text[index].push_str(&text);
                o.ids[index].push(id);
            }
            Event::Finished { index, text, .. } => o.text[index].push_str(&text),
            Event::Done(u) => {
                o.usage = u;
                return o;
            }
            Event::Error(m) => panic!("request failed: {m}"),
        }
    }
}

/// The reference: the same engine serving one request at a time.
fn sequential(m: &Arc<Model>, prompts: &[Vec<u32>], max_tokens: usize) -> Vec<(String, Vec<u32>)> {
    let e = EngineHandle::start(m.clone(), Device::Cpu, cfg()).unwrap();
    prompts
        .iter()
        .map(|p| {
            let req = GenRequest {
                prompt: p.clone(),
                params: greedy(max_tokens),
                n: 1,
                logprobs: None,
            };
            let (_g, rx) = submit(&e, req);
            let o = collect(&rx, 1);
            (o.text[0].clone(), o.ids[0].clone())
        })
        .collect()
}

/// One-at-a-time generation (the CLI's `Engine`) agrees with the served reference on its
/// first tokens (the CPU's unpadded GEMV differs from the tiled path by rounding).
#[test]
fn served_reference_starts_like_the_cli_engine() {
    let m = model();
    let p = prompt(&m, PROMPTS[0]);
    let served = sequential(&m, std::slice::from_ref(&p), 4);
    let mut eng = Engine::new(m.clone(), 256);
    let cli = eng.generate(&p, &greedy(4), &mut |_| {}).unwrap();
    assert_eq!(served[0].1[..2], cli.token_ids[..2]);
}

fn wait_idle(e: &EngineHandle) {
    let t = Instant::now();
    while e.stats().requests_in_flight > 0 || e.stats().seqs_running > 0 {
        assert!(t.elapsed() < Duration::from_secs(30), "engine never idled");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn run_batch(
    m: &Arc<Model>,
    cfg: EngineConfig,
    prompts: &[Vec<u32>],
    max_tokens: usize,
) -> (Vec<Out>, EngineHandle) {
    let e = EngineHandle::start(m.clone(), Device::Cpu, cfg).unwrap();
    let subs: Vec<_> = prompts
        .iter()
        .map(|p| {
            submit(
                &e,
                GenRequest {
                    prompt: p.clone(),
                    params: greedy(max_tokens),
                    n: 1,
                    logprobs: None,
                },
            )
        })
        .collect();
    let outs = subs.iter().map(|(_, rx)| collect(rx, 1)).collect();
    wait_idle(&e);
    (outs, e)
}

#[test]
fn batched_greedy_matches_sequential_and_frees_blocks() {
    let m = model();
    let prompts: Vec<_> = PROMPTS.iter().map(|p| prompt(&m, p)).collect();
    let want = sequential(&m, &prompts, 8);
    // A small token budget: prefill chunks of several prompts mix with decode tokens.
    let cfg = EngineConfig {
        max_num_seqs: 4,
        max_batched_tokens: 12,
        num_blocks: 64,
        ..cfg()
    };
    let (outs, e) = run_batch(&m, cfg, &prompts, 8);
    for (o, (text, ids)) in outs.iter().zip(&want) {
        assert_eq!(&o.ids[0], ids);
        assert_eq!(&o.text[0], text);
        assert_eq!(o.usage.completion_tokens, ids.len());
    }
    let s = e.stats();
    assert_eq!(s.kv_blocks_used, 0, "{s:?}");
    assert_eq!(s.requests_total, 6);
    assert!(s.steps > 8, "batched steps: {}", s.steps);
}

#[test]
fn preemption_recomputes_with_identical_output() {
    let m = model();
    let prompts: Vec<_> = PROMPTS.iter().map(|p| prompt(&m, p)).collect();
    let want = sequential(&m, &prompts, 20);
    // 5 blocks (80 tokens) cannot hold six sequences of ~30 tokens at once.
    let cfg = EngineConfig {
        max_num_seqs: 6,
        max_batched_tokens: 64,
        num_blocks: 5,
        ..cfg()
    };
    let (outs, e) = run_batch(&m, cfg, &prompts, 20);
    for (o, (text, ids)) in outs.iter().zip(&want) {
        assert_eq!(&o.ids[0], ids);
        assert_eq!(&o.text[0], text);
    }
    let s = e.stats();
    assert!(s.preemptions > 0, "{s:?}");
    assert_eq!(s.kv_blocks_used, 0, "{s:?}");
}

#[test]
fn cancellation_frees_every_block() {
    let m = model();
    let e = EngineHandle::start(m.clone(), Device::Cpu, cfg()).unwrap();
    let p = prompt(&m, PROMPTS[1]);
    for round in 0..3 {
        let subs: Vec<_> = (0..8)
            .map(|i| {
                let mut params = greedy(1000);
                params.ignore_eos = true;
                let mut pr = p.clone();
                pr.push(i + round);
                submit(
                    &e,
                    GenRequest {
                        prompt: pr,
                        params,
                        n: 1,
                        logprobs: None,
                    },
                )
            })
            .collect();
        // Drop some while queued or in prefill, the rest after their first token.
        for (i, (g, rx)) in subs.into_iter().enumerate() {
            if i % 2 == 1 {
                let _ = rx.recv_timeout(Duration::from_secs(30));
            }
            drop(g);
        }
        wait_idle(&e);
        let s = e.stats();
        assert_eq!(s.kv_blocks_used, 0, "{s:?}");
        assert_eq!(s.seqs_waiting, 0);
    }
    assert_eq!(e.stats().requests_cancelled, 24);
}

#[test]
fn prefix_cache_hits_give_identical_output() {
    let m = model();
    let e = EngineHandle::start(m.clone(), Device::Cpu, cfg()).unwrap();
    let long = format!("{} Answer briefly: what is it?", PROMPTS[1].repeat(4));
    let p = prompt(&m, &long);
    assert!(p.len() > 40);
    let req = || GenRequest {
        prompt: p.clone(),
        params: greedy(10),
        n: 1,
        logprobs: None,
    };
    let (_g1, rx1) = submit(&e, req());
    let first = collect(&rx1, 1);
    let (_g2, rx2) = submit(&e, req());
    let second = collect(&rx2, 1);
    assert_eq!(first.usage.cached_tokens, 0);
    assert_eq!(second.usage.cached_tokens, (p.len() - 1) / 16 * 16);
    assert_eq!(first.ids, second.ids);
    assert_eq!(first.text, second.text);
    let want = sequential(&m, std::slice::from_ref(&p), 10);
    assert_eq!(first.ids[0], want[0].1);
    let s = e.stats();
    assert_eq!(s.prefix_hit_blocks as usize, (p.len() - 1) / 16);
    assert!(s.kv_blocks_cached > 0);
}

#[test]
fn n_choices_fork_the_prompt() {
    let m = model();
    let e = EngineHandle::start(m.clone(), Device::Cpu, cfg()).unwrap();
    let p = prompt(&m, PROMPTS[0]);
    let (_g, rx) = submit(
        &e,
        GenRequest {
            prompt: p.clone(),
            params: greedy(6),
            n: 3,
            logprobs: Some(2),
        },
    );
    let o = collect(&rx, 3);
    let want = sequential(&m, std::slice::from_ref(&p), 6);
    for i in 0..3 {
        assert_eq!(o.ids[i], want[0].1, "choice {i}");
    }
    assert_eq!(o.usage.completion_tokens, 3 * want[0].1.len());
    // Seeded sampling: reproducible per request, different across choices.
    let sampled = |seed| {
        let params = SamplingParams {
            temperature: 1.5,
            seed: Some(seed),
            max_tokens: 12,
            ignore_eos: true,
            ..SamplingParams::default()
        };
        let (_g, rx) = submit(
            &e,
            GenRequest {
                prompt: p.clone(),
                params,
                n: 3,
                logprobs: None,
            },
        );
        collect(&rx, 3)
    };
    let (a, b) = (sampled(7), sampled(7));
    assert_eq!(a.ids, b.ids);
    assert_ne!(a.ids[0], a.ids[1]);
    wait_idle(&e);
    assert_eq!(e.stats().kv_blocks_used, 0);
}

#[test]
fn full_queue_is_refused_and_draining_too() {
    let m = model();
    let cfg = EngineConfig {
        max_requests: 2,
        ..cfg()
    };
    let e = EngineHandle::start(m.clone(), Device::Cpu, cfg).unwrap();
    let p = prompt(&m, PROMPTS[0]);
    let mut params = greedy(200);
    params.ignore_eos = true;
    let req = || GenRequest {
        prompt: p.clone(),
        params: params.clone(),
        n: 1,
        logprobs: None,
    };
    let (g1, rx1) = submit(&e, req());
    let (g2, _rx2) = submit(&e, req());
    let third = e.submit(req(), Box::new(|_: Event| true));
    assert!(
        matches!(third, Err(Error::Overloaded)),
        "third request was admitted"
    );
    let _ = rx1.recv_timeout(Duration::from_secs(30));
    drop((g1, g2));
    wait_idle(&e);
    assert!(e.submit(req(), Box::new(|_: Event| true)).is_ok());
    e.shutdown();
    assert!(matches!(
        e.submit(req(), Box::new(|_: Event| true)),
        Err(Error::ShuttingDown)
    ));
    e.join();
}

#[test]
fn bad_requests_fail_with_an_error_event() {
    let m = model();
    let e = EngineHandle::start(m.clone(), Device::Cpu, cfg()).unwrap();
    let vocab = m.config.vocab as u32;
    let (_g, rx) = submit(
        &e,
        GenRequest {
            prompt: vec![1, vocab],
            params: greedy(4),
            n: 1,
            logprobs: None,
        },
    );
    match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
        Event::Error(msg) => assert!(msg.contains("vocabulary"), "{msg}"),
        other => panic!("expected an error, got {other:?}"),
    }
    wait_idle(&e);
    assert_eq!(e.stats().requests_in_flight, 0);
}
