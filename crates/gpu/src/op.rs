//! GPU op families and their stable snake_case names (`gemv_q4_0`, `gemm_q6_k`, `rms_norm`, …).

use std::sync::LazyLock;

use marlin_core::QuantFormat;

/// An op family with GPU kernels. A kernel's name is `<op>_<format>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Quantized matrix × vector, one token (decode).
    Gemv,
    /// `gemv` of `rms_norm(x) · w` (x the residual stream): the norm folded into the GEMV.
    GemvNorm,
    /// `gemv_norm` that also stores `rms_norm(x) · w` (for the GEMVs after it): the norm
    /// dispatch folded into the first GEMV that reads it.
    GemvNormOut,
    /// `gemv` added into its output (the residual stream): the add folded into the GEMV.
    GemvAdd,
    /// `gemv_norm` of one token's q|k|v projection with RoPE (adjacent pairs) and the f16
    /// KV-cache write folded into its output: `rope_kv` folded into the GEMV.
    GemvNormRopeKv,
    /// `gemv_norm` of one token's gate|up projection with SwiGLU folded into its output:
    /// each workgroup pairs gate row i with up row i and stores `silu(gate) · up` (the
    /// `silu_mul` dispatch folded into the GEMV).
    GemvNormSwiglu,
    /// Trellis `gemv` that applies the weight's input side itself, `H_128(suh ⊙ x)` per
    /// tile (subgroup shuffles across a block's 8 tiles): the input side's `hadamard_scale`
    /// folded into the GEMV.
    GemvHadamard,
    /// Quantized matrix × matrix, several tokens (prefill, batched decode).
    Gemm,
    /// Quantized matrix × a few vectors (small-batch decode): each weight unit decoded once
    /// and applied to up to 8 tokens per pass.
    GemvMulti,
    /// Activations quantized to 8 bits per 32-element unit, once per matmul input (the
    /// Dp4a `gemv_multi` reads them instead of quantizing per workgroup).
    ActQ8,
    /// Rows of a (quantized) embedding table for a batch of token ids.
    Embed,
    /// Rows of an f32 matrix on the GPU picked by ids (MoE grouping, the LM head's rows).
    GatherRows,
    /// RMSNorm of rows.
    RmsNorm,
    /// Residual add fused with the next RMSNorm.
    AddRmsNorm,
    /// RoPE, adjacent pairs.
    RopeNormal,
    /// RoPE, half-split pairs.
    RopeNeox,
    /// RoPE of q and k (adjacent pairs) fused with the paged K/V cache write.
    RopeKvNormal,
    /// RoPE of q and k (half-split pairs) fused with the paged K/V cache write.
    RopeKvNeox,
    /// `gate = silu(gate) · up`.
    SiluMul,
    /// `gate = gelu_tanh(gate) · up`.
    GeluTanhMul,
    /// `dst += src` (broadcast when `src` is shorter).
    Add,
    /// K or V rows into a paged cache through slot indices.
    KvWrite,
    /// Causal paged attention with an online softmax.
    AttnPaged,
    /// Split-K attention: partial softmax states over chunks of keys.
    AttnSplit,
    /// Merge of `AttnSplit` partials.
    AttnCombine,
    /// Causal attention over query blocks sharing K/V tiles (prefill).
    AttnPrefill,
    /// Causal prefill attention on cooperative matrices (tensor cores), f16 KV cache.
    AttnFlash,
    /// Index of the largest value of each row.
    Argmax,
    /// Sampling pass 1: per chunk of a logits row, its best candidates and statistics.
    SampleCands,
    /// Sampling pass 2: per row, the filters and the seeded draw.
    SamplePick,
    /// Block-Hadamard rotation of activations (inputs of rotated weights).
    Hadamard,
    /// Block-Hadamard rotation with a per-column scale (the two sides of a trellis matmul).
    HadamardScale,
    /// `hadamard_scale` per MoE token slot, each slot with the scale of its routed expert
    /// (the two sides of a stacked trellis expert matmul).
    MoeHadamardScale,
    /// Between the gate|up and down GEMVs of stacked trellis experts: gate|up's output side,
    /// `silu(gate) · up` and down's input side per slot, in one pass.
    MoeHadamardSwiglu,
    /// `moe_combine` with stacked trellis down experts' output side folded in.
    MoeHadamardCombine,
    /// GEMV of each token slot with the rows of its routed expert (stacked expert weights).
    MoeGemv,
    /// `moe_gemv` of trellis experts that applies each slot's input side itself, as
    /// `gemv_hadamard` (`moe_hadamard_scale`'s input side folded in).
    MoeGemvHadamard,
    /// `moe_gemv` with the RMSNorm before it folded in (x is the residual stream).
    MoeGemvNorm,
    /// `moe_gemv` of `silu(gate) · up` (x rows are gate|up rows): silu_mul folded in.
    MoeGemvSilu,
    /// `moe_gemv_silu` with `moe_combine` folded in: the workgroup completing a token's
    /// slots of a row block sums them into the output (decode's down experts).
    MoeGemvSiluCombine,
    /// `moe_gemv` over chunks of slots that share an expert (`moe_sort`'s order): each
    /// weight unit decoded once for up to 8 slots (prefill).
    MoeGemvMulti,
    /// The grouped MoE GEMM on cooperative matrices (prefill): each workgroup one expert's
    /// row tile times a chunk of that expert's slots (`moe_sort`'s order), on tensor cores.
    MoeGemm,
    /// MoE slots grouped by expert: the sorted order, each slot's place and the chunks.
    MoeSort,
    /// MoE routing: router logits → expert ids and weights per token slot.
    MoeRoute,
    /// MoE combine: weighted sum of a token's expert outputs.
    MoeCombine,
    /// Absorbed MLA attention over a paged latent cache (split-K partials or the output).
    AttnMla,
    /// MLA latent: q_a / kv_a RMSNorms, RoPE of k_pe and the latent cache write.
    MlaLatent,
    /// A prompt chunk's MLA queries packed as one scaled `[q̃ ‖ RoPE(q_pe)]` matrix (the
    /// score GEMM's input).
    MlaQPack,
    /// A sequence's paged latent rows as a dense f16 key matrix and a transposed value one
    /// (the weights of a prompt chunk's MLA GEMMs).
    MlaKvDense,
    /// Causal softmax of a prompt chunk's MLA scores, in place.
    MlaSoftmax,
    /// Sum of a split-K coop GEMM's partial outputs into the real output.
    GemmSplitkReduce,
}

impl Op {
    /// Every op family.
    pub const ALL: [Op; 51] = [
        Op::Gemv,
        Op::GemvNorm,
        Op::GemvNormOut,
        Op::GemvAdd,
        Op::GemvNormRopeKv,
        Op::GemvNormSwiglu,
        Op::GemvHadamard,
        Op::Gemm,
        Op::GemvMulti,
        Op::ActQ8,
        Op::Embed,
        Op::GatherRows,
        Op::RmsNorm,
        Op::AddRmsNorm,
        Op::RopeNormal,
        Op::RopeNeox,
        Op::RopeKvNormal,
        Op::RopeKvNeox,
        Op::SiluMul,
        Op::GeluTanhMul,
        Op::Add,
        Op::KvWrite,
        Op::AttnPaged,
        Op::AttnSplit,
        Op::AttnCombine,
        Op::AttnPrefill,
        Op::AttnFlash,
        Op::Argmax,
        Op::SampleCands,
        Op::SamplePick,
        Op::Hadamard,
        Op::HadamardScale,
        Op::MoeHadamardScale,
        Op::MoeHadamardSwiglu,
        Op::MoeHadamardCombine,
        Op::MoeGemv,
        Op::MoeGemvHadamard,
        Op::MoeGemvNorm,
        Op::MoeGemvSilu,
        Op::MoeGemvSiluCombine,
        Op::MoeGemvMulti,
        Op::MoeGemm,
        Op::MoeSort,
        Op::MoeRoute,
        Op::MoeCombine,
        Op::AttnMla,
        Op::MlaLatent,
        Op::MlaQPack,
        Op::MlaKvDense,
        Op::MlaSoftmax,
        Op::GemmSplitkReduce,
    ];
    /// The op families that read quantized weights (one kernel per weight format).
    pub const MATMUL: [Op; 3] = [Op::Gemv, Op::Gemm, Op::GemvMulti];

    /// Stable name: the shader folder and the kernel-name prefix.
    pub fn name(self) -> &'static str {
        match self {
            Op::Gemv => "gemv",
            Op::GemvNorm => "gemv_norm",
            Op::GemvNormOut => "gemv_norm_out",
            Op::GemvAdd => "gemv_add",
            Op::GemvNormRopeKv => "gemv_norm_rope_kv",
            Op::GemvNormSwiglu => "gemv_norm_swiglu",
            Op::GemvHadamard => "gemv_hadamard",
            Op::Gemm => "gemm",
            Op::GemvMulti => "gemv_multi",
            Op::ActQ8 => "act_q8",
            Op::Embed => "embed",
            Op::GatherRows => "gather_rows",
            Op::RmsNorm => "rms_norm",
            Op::AddRmsNorm => "add_rms_norm",
            Op::RopeNormal => "rope_normal",
            Op::RopeNeox => "rope_neox",
            Op::RopeKvNormal => "rope_kv_normal",
            Op::RopeKvNeox => "rope_kv_neox",
            Op::SiluMul => "silu_mul",
            Op::GeluTanhMul => "gelu_tanh_mul",
            Op::Add => "add",
            Op::KvWrite => "kv_write",
            Op::AttnPaged => "attn_paged",
            Op::AttnSplit => "attn_split",
            Op::AttnCombine => "attn_combine",
            Op::AttnPrefill => "attn_prefill",
            Op::AttnFlash => "attn_flash",
            Op::Argmax => "argmax",
            Op::SampleCands => "sample_cands",
            Op::SamplePick => "sample_pick",
            Op::Hadamard => "hadamard",
            Op::HadamardScale => "hadamard_scale",
            Op::MoeHadamardScale => "moe_hadamard_scale",
            Op::MoeHadamardSwiglu => "moe_hadamard_swiglu",
            Op::MoeHadamardCombine => "moe_hadamard_combine",
            Op::MoeGemv => "moe_gemv",
            Op::MoeGemvHadamard => "moe_gemv_hadamard",
            Op::MoeGemvNorm => "moe_gemv_norm",
            Op::MoeGemvSilu => "moe_gemv_silu",
            Op::MoeGemvSiluCombine => "moe_gemv_silu_combine",
            Op::MoeGemvMulti => "moe_gemv_multi",
            Op::MoeGemm => "moe_gemm",
            Op::MoeSort => "moe_sort",
            Op::MoeRoute => "moe_route",
            Op::MoeCombine => "moe_combine",
            Op::AttnMla => "attn_mla",
            Op::MlaLatent => "mla_latent",
            Op::MlaQPack => "mla_q_pack",
            Op::MlaKvDense => "mla_kv_dense",
            Op::MlaSoftmax => "mla_softmax",
            Op::GemmSplitkReduce => "gemm_splitk_reduce",
        }
    }

    /// True for the GEMV with other input/output hooks (`gemv_norm`, `gemv_add`, …): the
    /// GEMV's kernels and geometry, plain weights only (`gemv_hadamard`, the trellis
    /// GEMV's hook, is not one of them).
    pub fn is_fused_gemv(self) -> bool {
        matches!(
            self,
            Op::GemvNorm | Op::GemvNormOut | Op::GemvAdd | Op::GemvNormRopeKv | Op::GemvNormSwiglu
        )
    }

    /// True for ops with one kernel per weight format (`gemv_q4_0`); the others have one
    /// kernel, keyed with [`QuantFormat::F32`] and named by the op alone.
    pub fn per_format(self) -> bool {
        matches!(
            self,
            Op::Gemv
                | Op::GemvNorm
                | Op::GemvNormOut
                | Op::GemvAdd
                | Op::GemvNormRopeKv
                | Op::GemvNormSwiglu
                | Op::GemvHadamard
                | Op::Gemm
                | Op::GemvMulti
                | Op::Embed
                | Op::MoeGemv
                | Op::MoeGemvHadamard
                | Op::MoeGemvNorm
                | Op::MoeGemvSilu
                | Op::MoeGemvSiluCombine
                | Op::MoeGemvMulti
                | Op::MoeGemm
        )
    }

    /// Weight formats this op has kernels for (`[F32]` for format-less ops).
    pub fn formats(self) -> &'static [QuantFormat] {
        if self.per_format() {
            MATMUL_FORMATS.as_slice()
        } else {
            &[QuantFormat::F32]
        }
    }
}

/// Weight formats the matmul kernels read directly: the GGML types with kernels, every
/// metal-marlin format, then every trellis format (matmuls only).
pub static MATMUL_FORMATS: LazyLock<Vec<QuantFormat>> = LazyLock::new(|| {
    let mut v = vec![
        QuantFormat::F32,
        QuantFormat::F16,
        QuantFormat::BF16,
        QuantFormat::Q4_0,
        QuantFormat::Q4_1,
        QuantFormat::Q5_0,
        QuantFormat::Q5_1,
        QuantFormat::Q8_0,
        QuantFormat::Q4_K,
        QuantFormat::Q5_K,
        QuantFormat::Q6_K,
        QuantFormat::MXFP4,
    ];
    v.extend(QuantFormat::marlin_all());
    v.extend(QuantFormat::trellis_all());
    v
});

/// The kernel name of `op` on `format` (`gemv_q4_0`; `rms_norm` for format-less ops).
pub fn kernel_name(op: Op, format: QuantFormat) -> String {
    if op.per_format() {
        format!("{}_{}", op.name(), format.name())
    } else {
        op.name().to_string()
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
