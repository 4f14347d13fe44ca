//! GPU op families and their stable snake_case names (`gemv_q4_0`, `gemm_q6_k`, …).

use marlin_core::QuantFormat;

/// An op family with GPU kernels. A kernel's name is `<op>_<format>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Quantized matrix × vector, one token (decode).
    Gemv,
    /// Quantized matrix × matrix, several tokens (prefill, batched decode).
    Gemm,
}

impl Op {
    /// Every op family.
    pub const ALL: [Op; 2] = [Op::Gemv, Op::Gemm];

    /// Stable name: the shader folder and the kernel-name prefix.
    pub fn name(self) -> &'static str {
        match self {
            Op::Gemv => "gemv",
            Op::Gemm => "gemm",
        }
    }

    /// Weight formats this op has kernels for.
    pub fn formats(self) -> &'static [QuantFormat] {
        MATMUL_FORMATS
    }
}

/// Weight formats the matmul kernels read directly.
pub const MATMUL_FORMATS: &[QuantFormat] = &[
    QuantFormat::F32,
    QuantFormat::F16,
    QuantFormat::BF16,
    QuantFormat::Q4_0,
    QuantFormat::Q4_1,
    QuantFormat::Q5_0,
    QuantFormat::Q8_0,
    QuantFormat::Q4_K,
    QuantFormat::Q5_K,
    QuantFormat::Q6_K,
];

/// The kernel name of `op` on `format` (`gemv_q4_0`).
pub fn kernel_name(op: Op, format: QuantFormat) -> String {
    format!("{}_{}", op.name(), format.name())
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
