//! Element-wise ops of the forward pass on f32 rows: RMSNorm, residual add, gated
//! activations, softmax, scaling, RoPE and f16 → f32 rows. Large inputs are split across rayon
//! threads.
//!
//! These are internal kernels whose shapes come from a validated model config: they return
//! nothing, check sizes with `debug_assert!` and, in release builds, touch only the part of the
//! buffers that lines up.

mod convert;
mod elementwise;
mod norm;
mod rope;

pub use convert::f16_to_f32;
pub use elementwise::{
    add_inplace, gelu_tanh, gelu_tanh_mul, scale_inplace, silu, silu_mul, softmax_inplace,
    softmax_rows_inplace,
};
pub use norm::{rms_norm, rms_norm_inplace};
pub use rope::{RopeTable, MAX_POSITIONS as ROPE_MAX_POSITIONS};

/// Element count from which an op is split across threads.
pub(crate) const PAR_MIN_ELEMS: usize = 1 << 15;
/// Elements per parallel chunk of a purely element-wise op.
pub(crate) const PAR_CHUNK: usize = 1 << 13;
