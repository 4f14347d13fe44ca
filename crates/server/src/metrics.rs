//! Prometheus metrics: HTTP responses by status, latency histograms (time to first token,
//! time per output token, end to end) and the engine's live counters, in the text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use marlin_engine::serve::StatsSnapshot;

/// Upper bounds (seconds) of the latency buckets.
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// A cumulative histogram.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    /// Records one observation of `v` seconds.
    pub fn observe(&mut self, v: f64) {
        for (c, &b) in self.counts.iter_mut().zip(&BUCKETS) {
            if v <= b {
                *c += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }

    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (c, b) in self.counts.iter().zip(&BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}\n{name}_count {}", self.sum, self.count);
    }
}

#[derive(Debug, Default)]
struct Inner {
    responses: BTreeMap<(String, u16), u64>,
    ttft: Histogram,
    tpot: Histogram,
    e2e: Histogram,
}

/// The server's metrics, shared by every handler.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    connections: AtomicI64,
}

impl Metrics {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        self.inner.lock().ok().map(|mut g| f(&mut g))
    }

    /// Adds `delta` to the open connections.
    pub fn connection(&self, delta: i64) {
        self.connections.fetch_add(delta, Ordering::Relaxed);
    }

    /// Counts a response of `status` on `route`.
    pub fn response(&self, route: &str, status: u16) {
        self.with(|m| *m.responses.entry((route.to_string(), status)).or_default() += 1);
    }

    /// Records a request's time to first token.
    pub fn ttft(&self, secs: f64) {
        self.with(|m| m.ttft.observe(secs));
    }

    /// Records a request's mean time per output token after the first.
    pub fn tpot(&self, secs: f64) {
        self.with(|m| m.tpot.observe(secs));
    }

    /// Records a request's total time.
    pub fn e2e(&self, secs: f64) {
        self.with(|m| m.e2e.observe(secs));
    }

    /// The Prometheus text exposition, with the engine's counters `s`.
    pub fn render(&self, s: &StatsSnapshot) -> String {
        let mut out = String::new();
        let (g, c) = ("gauge", "counter");
        let rate = if s.prefix_queried_blocks == 0 {
            0.0
        } else {
            s.prefix_hit_blocks as f64 / s.prefix_queried_blocks as f64
        };
        let conns = self.connections.load(Ordering::Relaxed).max(0) as f64;
        let rows: [(&str, &str, &str, f64); 20] = [
            (
                "marlin_requests_running",
                "Sequences in the running batch.",
                g,
                s.seqs_running as f64,
            ),
            (
                "marlin_requests_waiting",
                "Sequences waiting for admission.",
                g,
                s.seqs_waiting as f64,
            ),
            (
                "marlin_requests_in_flight",
                "Requests admitted and not finished.",
                g,
                s.requests_in_flight as f64,
            ),
            (
                "marlin_requests_total",
                "Requests accepted by the engine.",
                c,
                s.requests_total as f64,
            ),
            (
                "marlin_requests_cancelled_total",
                "Requests cancelled by their client.",
                c,
                s.requests_cancelled as f64,
            ),
            (
                "marlin_requests_failed_total",
                "Requests that ended in an engine error.",
                c,
                s.requests_failed as f64,
            ),
            (
                "marlin_kv_blocks_total",
                "KV cache blocks.",
                g,
                s.kv_blocks_total as f64,
            ),
            (
                "marlin_kv_blocks_free",
                "KV blocks on the free list.",
                g,
                s.kv_blocks_free as f64,
            ),
            (
                "marlin_kv_blocks_used",
                "KV blocks held by sequences.",
                g,
                s.kv_blocks_used as f64,
            ),
            (
                "marlin_kv_blocks_cached",
                "KV blocks in the prefix cache.",
                g,
                s.kv_blocks_cached as f64,
            ),
            (
                "marlin_prefix_cache_queries_total",
                "Full prompt blocks looked up in the prefix cache.",
                c,
                s.prefix_queried_blocks as f64,
            ),
            (
                "marlin_prefix_cache_hits_total",
                "Prompt blocks found in the prefix cache.",
                c,
                s.prefix_hit_blocks as f64,
            ),
            (
                "marlin_prefix_cache_evictions_total",
                "Cached blocks evicted.",
                c,
                s.prefix_evicted_blocks as f64,
            ),
            (
                "marlin_prefix_cache_hit_rate",
                "Prefix-cache hits over queries (blocks).",
                g,
                rate,
            ),
            (
                "marlin_preemptions_total",
                "Sequences preempted for KV blocks.",
                c,
                s.preemptions as f64,
            ),
            (
                "marlin_prompt_tokens_total",
                "Prompt tokens run through the model.",
                c,
                s.prompt_tokens as f64,
            ),
            (
                "marlin_generation_tokens_total",
                "Tokens generated.",
                c,
                s.generated_tokens as f64,
            ),
            (
                "marlin_engine_steps_total",
                "Forward steps.",
                c,
                s.steps as f64,
            ),
            (
                "marlin_connections_open",
                "Open HTTP connections.",
                g,
                conns,
            ),
            ("marlin_up", "1 while the server runs.", g, 1.0),
        ];
        for (name, help, kind, v) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        self.with(|m| {
            let _ = writeln!(
                out,
                "# HELP marlin_http_responses_total HTTP responses by route and status.\n# TYPE marlin_http_responses_total counter"
            );
            for ((route, status), n) in &m.responses {
                let _ = writeln!(
                    out,
                    "marlin_http_responses_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
            m.ttft.render(&mut out, "marlin_time_to_first_token_seconds", "Time to first token.");
            m.tpot.render(&mut out, "marlin_time_per_output_token_seconds", "Mean time per output token after the first.");
            m.e2e.render(&mut out, "marlin_request_duration_seconds", "End-to-end request time.");
        });
        out
    }
}
