//! `Scheduler`: continuous batching. Each step runs the decode token of every running
//! sequence plus chunks of waiting prompts, up to `max_batched_tokens`; sequences join and
//! leave between steps. When KV blocks run out the most recently admitted sequence is
//! preempted (its blocks freed, its tokens recomputed later). Cancelled requests leave at
//! the start of the next step with all their blocks freed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use marlin_models::Model;

use crate::blocks::BLOCK_SIZE;
use crate::kv_pool::KvPool;
use crate::runner::Runner;
use crate::serve::request::{EngineConfig, Event, EventSink, GenRequest, Usage};
use crate::serve::sequence::Sequence;
use crate::serve::stats::{self, Stats};
use crate::{Error, Result};

/// A request's bookkeeping while any of its sequences lives.
pub(crate) struct ReqState {
    pub(crate) sink: Box<dyn EventSink>,
    pub(crate) cancel: Arc<AtomicBool>,
    pub(crate) n: usize,
    pub(crate) live: usize,
    pub(crate) forked: bool,
    pub(crate) logprobs: Option<usize>,
    pub(crate) usage: Usage,
}

/// The batching state machine; one thread drives it with [`Scheduler::step`].
pub struct Scheduler {
    pub(crate) runner: Runner,
    pub(crate) pool: KvPool,
    pub(crate) cfg: EngineConfig,
    pub(crate) waiting: VecDeque<Sequence>,
    pub(crate) running: Vec<Sequence>,
    pub(crate) reqs: HashMap<u64, ReqState>,
    next_id: u64,
    pub(crate) capacity: usize,
    pub(crate) stats: Arc<Stats>,
}

impl Scheduler {
    /// A scheduler over `runner` (whose storage has `cfg.num_blocks` blocks).
    pub fn new(runner: Runner, cfg: EngineConfig, stats: Arc<Stats>) -> Self {
        let pool = KvPool::new(runner.num_blocks(), cfg.prefix_caching);
        let capacity = runner
            .model()
            .config
            .context_length
            .min(pool.num_blocks() * BLOCK_SIZE);
        let s = Self {
            runner,
            pool,
            cfg,
            waiting: VecDeque::new(),
            running: Vec::new(),
            reqs: HashMap::new(),
            next_id: 0,
            capacity,
            stats,
        };
        s.publish();
        s
    }

    /// Most tokens (prompt plus generated) one sequence can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The model.
    pub fn model(&self) -> &Arc<Model> {
        self.runner.model()
    }

    /// The KV pool (tests and metrics).
    pub fn pool(&self) -> &KvPool {
        &self.pool
    }

    /// True when no request is queued or running.
    pub fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Checks that `req` can run here (prompt, context, vocabulary, parameters).
    pub fn validate(&self, req: &GenRequest) -> Result<()> {
        let vocab = self.model().config.vocab;
        let bad = |m: String| Err(Error::InvalidRequest(m));
        if req.prompt.is_empty() {
            return bad("the prompt is empty".into());
        }
        if req.prompt.len() >= self.capacity {
            return bad(format!(
                "the prompt has {} tokens; the context holds {}",
                req.prompt.len(),
                self.capacity
            ));
        }
        if let Some(t) = req.prompt.iter().find(|&&t| t as usize >= vocab) {
            return bad(format!("token id {t} is outside the vocabulary ({vocab})"));
        }
        if req.n == 0 || req.params.max_tokens == 0 {
            return bad("n and max_tokens must be at least 1".into());
        }
        req.params.validate()
    }

    /// A request was refused after taking an in-flight slot: give the slot back.
    pub(crate) fn release_slot(&self) {
        stats::sub(&self.stats.requests_in_flight, 1);
        stats::add(&self.stats.requests_failed, 1);
    }

    /// Queues `req` (checked with [`Scheduler::validate`]); its events go to `sink`;
    /// setting `cancel` aborts it.
    pub fn add(&mut self, req: GenRequest, sink: Box<dyn EventSink>, cancel: Arc<AtomicBool>) {
        let id = self.next_id;
        self.next_id += 1;
        self.waiting
            .push_back(Sequence::new(id, 0, req.prompt.clone(), &req.params));
        self.reqs.insert(
            id,
            ReqState {
                sink,
                cancel,
                n: req.n,
                live: 1,
                forked: req.n == 1,
                logprobs: req.logprobs,
                usage: Usage {
                    prompt_tokens: req.prompt.len(),
                    ..Usage::default()
                },
            },
        );
        stats::add(&self.stats.requests_total, 1);
        self.publish();
    }

    /// One scheduling step: drop cancelled requests, admit waiting sequences, run one
    /// forward pass and hand out the sampled tokens.
    pub fn step(&mut self) -> Result<()> {
        self.reap_cancelled();
        self.admit();
        let plan = self.plan();
        if !plan.is_empty() {
            self.run(&plan);
            self.reap_cancelled();
        }
        self.publish();
        Ok(())
    }

    /// Fails every request with `msg` and frees all their blocks (after a fault).
    pub fn fail_all(&mut self, msg: &str) {
        let ids: Vec<u64> = self.reqs.keys().copied().collect();
        for id in ids {
            self.finish_request(id, Some(msg));
        }
        self.publish();
    }

    pub(crate) fn reap_cancelled(&mut self) {
        let gone: Vec<u64> = self
            .reqs
            .iter()
            .filter(|(_, r)| r.cancel.load(Ordering::Relaxed))
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            stats::add(&self.stats.requests_cancelled, 1);
            self.remove_request(id);
        }
    }

    /// Removes request `id` and all its sequences, freeing their blocks.
    fn remove_request(&mut self, id: u64) {
        let pool = &mut self.pool;
        let mut drop_seq = |s: &mut Sequence| {
            if s.req == id {
                pool.release(&mut s.table);
                false
            } else {
                true
            }
        };
        self.running.retain_mut(&mut drop_seq);
        self.waiting.retain_mut(&mut drop_seq);
        if self.reqs.remove(&id).is_some() {
            // Gauges first: whoever sees the request gone also sees its blocks freed.
            self.publish();
            stats::sub(&self.stats.requests_in_flight, 1);
        }
    }

    /// Sends the request's last event (an error, or `Done` with usage) and removes it.
    pub(crate) fn finish_request(&mut self, id: u64, error: Option<&str>) {
        if let Some(r) = self.reqs.get_mut(&id) {
            let ev = match error {
                Some(m) => {
                    stats::add(&self.stats.requests_failed, 1);
                    Event::Error(m.to_string())
                }
                None => Event::Done(r.usage),
            };
            r.sink.send(ev);
        }
        self.remove_request(id);
    }

    /// Moves waiting sequences into the batch, first come first served, while there are
    /// sequence slots and blocks for the whole of their tokens.
    fn admit(&mut self) {
        while self.running.len() < self.cfg.max_num_seqs {
            let Some(mut s) = self.waiting.pop_front() else {
                break;
            };
            if s.computed == 0 && s.table.blocks().is_empty() {
                let hit = self.pool.match_prefix(&mut s.table, &s.tokens);
                s.computed = hit;
                s.keys = self.pool.chain(&s.tokens, hit);
                if let Some(r) = self.reqs.get_mut(&s.req) {
                    if r.usage.cached_tokens == 0 && s.generated == 0 {
                        r.usage.cached_tokens = hit;
                    }
                }
            }
            let need = self
                .pool
                .blocks_needed(&s.table, s.computed, s.tokens.len() + 1);
            if need > self.pool.available() && !self.running.is_empty() {
                self.pool.release(&mut s.table);
                s.computed = 0;
                s.keys.clear();
                self.waiting.push_front(s);
                break;
            }
            self.running.push(s);
        }
    }

    /// Picks (running index, tokens to feed) for this step: decode tokens first, then
    /// prefill chunks, within the token budget and the blocks available, preempting the
    /// newest sequences when even the decode tokens do not fit.
    fn plan(&mut self) -> Vec<(usize, usize)> {
        loop {
            let mut budget = self.cfg.max_batched_tokens.max(1);
            let mut plan = Vec::new();
            let mut need = 0;
            for (i, s) in self.running.iter().enumerate() {
                if s.remaining() == 1 && budget > 0 {
                    plan.push((i, 1));
                    budget -= 1;
                    need += self
                        .pool
                        .blocks_needed(&s.table, s.computed, s.computed + 1);
                }
            }
            let avail = self.pool.available();
            if need > avail {
                if !self.preempt_newest() {
                    return Vec::new();
                }
                continue;
            }
            let mut left = avail - need;
            for (i, s) in self.running.iter().enumerate() {
                if s.remaining() <= 1 || budget == 0 {
                    continue;
                }
                let cow = self.pool.blocks_needed(&s.table, s.computed, 0);
                let room = (s.table.blocks().len() + left.saturating_sub(cow)) * BLOCK_SIZE;
                let take = s
                    .remaining()
                    .min(budget)
                    .min(room.saturating_sub(s.computed));
                if take == 0 {
                    continue;
                }
                let n = self
                    .pool
                    .blocks_needed(&s.table, s.computed, s.computed + take);
                left -= n.min(left);
                budget -= take;
                plan.push((i, take));
            }
            if plan.is_empty() && !self.running.is_empty() {
                // Nothing fits: make room by preempting, or fail the lone sequence.
                if !self.preempt_newest() {
                    return Vec::new();
                }
                continue;
            }
            plan.sort_unstable();
            return plan;
        }
    }

    /// Preempts the most recently admitted running sequence; false (after failing its
    /// request) when it is the only one, which can then never fit.
    fn preempt_newest(&mut self) -> bool {
        if self.running.len() <= 1 {
            if let Some(s) = self.running.first() {
                let id = s.req;
                self.finish_request(id, Some("the KV cache is too small for this request"));
            }
            return false;
        }
        if let Some(mut s) = self.running.pop() {
            self.pool.release(&mut s.table);
            s.computed = 0;
            s.keys.clear();
            self.waiting.push_front(s);
            stats::add(&self.stats.preemptions, 1);
        }
        true
    }

    fn publish(&self) {
        let st = &self.stats;
        stats::set(&st.seqs_waiting, self.waiting.len());
        stats::set(&st.seqs_running, self.running.len());
        stats::set(&st.kv_blocks_total, self.pool.num_blocks());
        stats::set(&st.kv_blocks_free, self.pool.num_free());
        stats::set(&st.kv_blocks_used, self.pool.num_used());
        stats::set(&st.kv_blocks_cached, self.pool.num_cached());
        let p = self.pool.stats();
        stats::set(&st.prefix_queried_blocks, p.queried as usize);
        stats::set(&st.prefix_hit_blocks, p.hits as usize);
        stats::set(&st.prefix_evicted_blocks, p.evicted as usize);
    }
}
