//! metal-marlin CPU backend: quantized matmul on packed blocks (SIMD + threads), attention
//! over the paged KV cache, and the element-wise ops of the forward pass.

pub mod attention;
pub mod error;
pub mod kv;
pub mod kv_latent;
pub mod kv_quant;
pub mod matmul;
pub mod ops;
pub mod quant_act;

pub use error::{Error, Result};
