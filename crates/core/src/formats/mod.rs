//! Reference (scalar, bit-exact) dequantization of every format, one module per family.

use crate::{Error, QuantFormat, Result};

/// Dequantize packed `src` (whole blocks) into `dst`; `dst.len()` elements are decoded.
pub fn dequantize(format: QuantFormat, src: &[u8], dst: &mut [f32]) -> Result<()> {
    let need = format.row_bytes(dst.len())?;
    if src.len() != need {
        return Err(Error::Shape(format!(
            "{format}: {} elements need {need} bytes, got {}",
            dst.len(),
            src.len()
        )));
    }
    Err(Error::Unsupported(format.name(), "dequantize"))
}
