//! Serving: continuous batching over many requests on an engine thread (scheduler,
//! sequences, events, live counters).

mod handle;
mod request;
mod scheduler;
mod score;
mod sequence;
mod stats;
mod step;

pub use handle::{EngineHandle, RequestGuard, ScoreReply};
pub use request::{EngineConfig, Event, EventSink, GenRequest, TokenLogprobs, TokenProb, Usage};
pub use scheduler::Scheduler;
pub use stats::{Stats, StatsSnapshot};
