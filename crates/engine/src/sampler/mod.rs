//! Token sampling: penalties, top-k / top-p / min-p, temperature and seeded draws; stop
//! strings over streamed text; log-probabilities.

mod chain;
mod filters;
mod logprobs;
mod params;
mod penalties;
mod stop;

pub use chain::Sampler;
pub use filters::argmax;
pub use logprobs::{log_sum_exp, token_logprob, top_logprobs, TokenLogprob};
pub use params::SamplingParams;
pub use penalties::apply_penalties;
pub use stop::StopChecker;
