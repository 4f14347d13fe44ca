//! metal-marlin's offline quantizer: HF export (`convert`), calibration Hessians from our
//! own CPU forward, RTN / GPTQ / MR-GPTQ onto the metal-marlin formats, mixed-precision
//! planning, and the atomic checkpoint writer.

pub mod calib;
pub mod convert;
pub mod error;
pub mod export;
pub mod export_moe;
pub mod gptq;
pub mod layerwise;
pub mod linalg;
pub mod plan;
pub mod quantize;
pub mod role;
pub mod st_writer;
pub mod trellis;

pub use error::{Error, Result};
