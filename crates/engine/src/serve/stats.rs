//! Live counters of the serving engine, written by its thread after every step and read by
//! anyone (metrics endpoints, tests).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters and gauges; see [`StatsSnapshot`] for their meaning.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) requests_in_flight: AtomicU64,
    pub(crate) requests_total: AtomicU64,
    pub(crate) requests_cancelled: AtomicU64,
    pub(crate) requests_failed: AtomicU64,
    pub(crate) seqs_waiting: AtomicU64,
    pub(crate) seqs_running: AtomicU64,
    pub(crate) kv_blocks_total: AtomicU64,
    pub(crate) kv_blocks_free: AtomicU64,
    pub(crate) kv_blocks_used: AtomicU64,
    pub(crate) kv_blocks_cached: AtomicU64,
    pub(crate) prefix_queried_blocks: AtomicU64,
    pub(crate) prefix_hit_blocks: AtomicU64,
    pub(crate) prefix_evicted_blocks: AtomicU64,
    pub(crate) preemptions: AtomicU64,
    pub(crate) prompt_tokens: AtomicU64,
    pub(crate) generated_tokens: AtomicU64,
    pub(crate) steps: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Requests admitted and not yet finished (queued or running).
    pub requests_in_flight: u64,
    /// Requests accepted since start.
    pub requests_total: u64,
    /// Requests cancelled (client gone).
    pub requests_cancelled: u64,
    /// Requests that ended with an error.
    pub requests_failed: u64,
    /// Sequences waiting for admission (including preempted ones).
    pub seqs_waiting: u64,
    /// Sequences in the running batch.
    pub seqs_running: u64,
    /// KV blocks in the pool.
    pub kv_blocks_total: u64,
    /// Blocks on the free list.
    pub kv_blocks_free: u64,
    /// Blocks held by sequences (not free, not merely cached): 0 when idle.
    pub kv_blocks_used: u64,
    /// Blocks in the prefix cache (used or evictable).
    pub kv_blocks_cached: u64,
    /// Full prompt blocks looked up in the prefix cache.
    pub prefix_queried_blocks: u64,
    /// Of those, hits.
    pub prefix_hit_blocks: u64,
    /// Cached blocks evicted.
    pub prefix_evicted_blocks: u64,
    /// Sequences preempted (their KV dropped, to be recomputed).
    pub preemptions: u64,
    /// Prompt tokens run through the model (prefix-cache hits excluded, recompute included).
    pub prompt_tokens: u64,
    /// Tokens sampled.
    pub generated_tokens: u64,
    /// Forward steps run.
    pub steps: u64,
}

impl Stats {
    /// The current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            requests_in_flight: g(&self.requests_in_flight),
            requests_total: g(&self.requests_total),
            requests_cancelled: g(&self.requests_cancelled),
            requests_failed: g(&self.requests_failed),
            seqs_waiting: g(&self.seqs_waiting),
            seqs_running: g(&self.seqs_running),
            kv_blocks_total: g(&self.kv_blocks_total),
            kv_blocks_free: g(&self.kv_blocks_free),
            kv_blocks_used: g(&self.kv_blocks_used),
            kv_blocks_cached: g(&self.kv_blocks_cached),
            prefix_queried_blocks: g(&self.prefix_queried_blocks),
            prefix_hit_blocks: g(&self.prefix_hit_blocks),
            prefix_evicted_blocks: g(&self.prefix_evicted_blocks),
            preemptions: g(&self.preemptions),
            prompt_tokens: g(&self.prompt_tokens),
            generated_tokens: g(&self.generated_tokens),
            steps: g(&self.steps),
        }
    }
}

pub(crate) fn set(a: &AtomicU64, v: usize) {
    a.store(v as u64, Ordering::Relaxed);
}

pub(crate) fn add(a: &AtomicU64, v: usize) {
    a.fetch_add(v as u64, Ordering::Relaxed);
}

pub(crate) fn sub(a: &AtomicU64, v: usize) {
    a.fetch_sub(v as u64, Ordering::Relaxed);
}
