//! The ggml tensor type table: every id ggml has defined, with its block geometry.

use marlin_core::QuantFormat;

/// A ggml tensor type known to this reader (including ones we cannot execute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GgmlType {
    /// The `ggml_type` id stored in the file.
    pub id: u32,
    /// ggml's upper-case name, e.g. `Q4_K`.
    pub name: &'static str,
    /// Elements per block (blocks run along ne0).
    pub block_elems: u64,
    /// Bytes per block.
    pub block_bytes: u64,
}

/// Why a type id was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeIdError {
    /// An id ggml once used and then removed (4, 5, 31–33, 36–38).
    Removed(&'static str),
    /// An id this reader does not know.
    Unknown,
}

const fn t(id: u32, name: &'static str, block_elems: u64, block_bytes: u64) -> GgmlType {
    GgmlType {
        id,
        name,
        block_elems,
        block_bytes,
    }
}

/// Every live type with a fixed block layout (sizes from ggml-common.h).
const TYPES: [GgmlType; 33] = [
    t(0, "F32", 1, 4),
    t(1, "F16", 1, 2),
    t(2, "Q4_0", 32, 18),
    t(3, "Q4_1", 32, 20),
    t(6, "Q5_0", 32, 22),
    t(7, "Q5_1", 32, 24),
    t(8, "Q8_0", 32, 34),
    t(9, "Q8_1", 32, 36),
    t(10, "Q2_K", 256, 84),
    t(11, "Q3_K", 256, 110),
    t(12, "Q4_K", 256, 144),
    t(13, "Q5_K", 256, 176),
    t(14, "Q6_K", 256, 210),
    t(15, "Q8_K", 256, 292),
    t(16, "IQ2_XXS", 256, 66),
    t(17, "IQ2_XS", 256, 74),
    t(18, "IQ3_XXS", 256, 98),
    t(19, "IQ1_S", 256, 50),
    t(20, "IQ4_NL", 32, 18),
    t(21, "IQ3_S", 256, 110),
    t(22, "IQ2_S", 256, 82),
    t(23, "IQ4_XS", 256, 136),
    t(24, "I8", 1, 1),
    t(25, "I16", 1, 2),
    t(26, "I32", 1, 4),
    t(27, "I64", 1, 8),
    t(28, "F64", 1, 8),
    t(29, "IQ1_M", 256, 56),
    t(30, "BF16", 1, 2),
    t(34, "TQ1_0", 256, 54),
    t(35, "TQ2_0", 256, 66),
    t(39, "MXFP4", 32, 17),
    t(40, "NVFP4", 64, 36),
];

const REMOVED: [(u32, &str); 8] = [
    (4, "Q4_2"),
    (5, "Q4_3"),
    (31, "Q4_0_4_4"),
    (32, "Q4_0_4_8"),
    (33, "Q4_0_8_8"),
    (36, "IQ4_NL_4_4"),
    (37, "IQ4_NL_4_8"),
    (38, "IQ4_NL_8_8"),
];

impl GgmlType {
    /// Look up a file's type id.
    pub fn from_id(id: u32) -> Result<Self, TypeIdError> {
        if let Some(t) = TYPES.iter().find(|t| t.id == id) {
            return Ok(*t);
        }
        match REMOVED.iter().find(|(r, _)| *r == id) {
            Some((_, name)) => Err(TypeIdError::Removed(name)),
            None => Err(TypeIdError::Unknown),
        }
    }

    /// The type of a [`QuantFormat`], `None` for metal-marlin formats (no ggml id).
    pub fn of_format(format: QuantFormat) -> Option<Self> {
        let id = format.ggml_id()?;
        Some(
            TYPES
                .iter()
                .copied()
                .find(|t| t.id == id)
                .unwrap_or(GgmlType {
                    id,
                    name: format.name(),
                    block_elems: format.block_elems() as u64,
                    block_bytes: format.block_bytes() as u64,
                }),
        )
    }

    /// The engine format for this type, if the engine has one.
    pub fn format(self) -> Option<QuantFormat> {
        QuantFormat::from_ggml_id(self.id)
    }

    /// Bytes for a tensor with these ggml dims; `None` if ne0 is not whole blocks or the
    /// size overflows u64.
    pub fn nbytes(self, dims: &[u64]) -> Option<u64> {
        let (&ne0, rest) = dims.split_first()?;
        if self.block_elems == 0 || ne0 % self.block_elems != 0 {
            return None;
        }
        let row = (ne0 / self.block_elems).checked_mul(self.block_bytes)?;
        rest.iter().try_fold(row, |acc, &d| acc.checked_mul(d))
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_agrees_with_core_formats() {
        for f in QuantFormat::ALL {
            let t = GgmlType::from_id(f.ggml_id().unwrap()).unwrap();
            assert_eq!(t.block_elems, f.block_elems() as u64, "{f}");
            assert_eq!(t.block_bytes, f.block_bytes() as u64, "{f}");
            assert_eq!(t.format(), Some(f));
            assert_eq!(GgmlType::of_format(f), Some(t));
        }
        assert_eq!(GgmlType::from_id(4), Err(TypeIdError::Removed("Q4_2")));
        assert_eq!(GgmlType::from_id(43), Err(TypeIdError::Unknown));
        assert_eq!(GgmlType::from_id(16).unwrap().format(), None);
    }

    #[test]
    fn nbytes_checks_blocks_and_overflow() {
        let q4 = GgmlType::from_id(2).unwrap();
        assert_eq!(q4.nbytes(&[64, 3]), Some(2 * 18 * 3));
        assert_eq!(q4.nbytes(&[48, 3]), None);
        let f32t = GgmlType::from_id(0).unwrap();
        assert_eq!(f32t.nbytes(&[1 << 63, 4]), None);
    }
}
