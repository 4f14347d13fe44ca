//! metal-marlin engine: sequences, the paged KV block allocator, the sampler and the
//! generation loop.

pub mod blocks;
pub mod error;
pub mod sampler;

pub use error::{Error, Result};
