//! metal-marlin engine: sequences, the paged KV block allocator, the sampler, the
//! generation loop and evaluation.

pub mod blocks;
mod decode;
pub mod error;
pub mod eval;
pub mod eval_kl;
pub mod generate;
pub mod kv_pool;
pub mod prefix_cache;
pub mod runner;
pub mod sampler;
pub mod serve;

pub use error::{Error, Result};
pub use generate::{Engine, FinishReason, GenerateOutput};
