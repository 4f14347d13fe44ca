//! Workgroup geometry of the kernels: threads, rows and tokens per workgroup, per variant
//! and format, with the launchers' side of the constants the shaders define.

use std::sync::OnceLock;

use marlin_core::QuantFormat;

use super::coop::coop_tt;
use super::Variant;
use crate::op::Op;

/// Threads per workgroup of the GEMV kernels (`WG` in gemv_body.wgsl).
pub const GEMV_WG: u32 = 256;
/// Threads per workgroup of the GEMM kernels (`WG` in gemm_body.wgsl).
pub const GEMM_WG: u32 = 64;
/// Rows per GEMM workgroup (`TM`).
pub const GEMM_ROWS: u32 = 64;
/// Tokens per GEMM workgroup (`TN`).
pub const GEMM_TOKENS: u32 = 16;
/// Threads per workgroup of the cooperative-matrix GEMMs (4 subgroups of 32).
pub const GEMM_COOP_WG: u32 = 128;

/// (rows, tokens) one GEMM workgroup of `variant` covers: coop tiles of 32 TT x 16 TT
/// (`coop_tt`).
pub fn gemm_tile(variant: Variant) -> (u32, u32) {
    match coop_tt(variant) {
        Some(tt) => (32 * tt.min(4), 16 * tt),
        None => (GEMM_ROWS, GEMM_TOKENS),
    }
}

/// Formats with a Dp4a GEMV (`dot_unit_q8` in their decode file).
pub const DP4A_FORMATS: &[QuantFormat] = &[QuantFormat::Q4_0, QuantFormat::Q8_0, QuantFormat::Q4_K];

/// Formats with a Dp4a `gemv_multi` (`unit_q8` in their decode file): [`DP4A_FORMATS`],
/// and the E2M1 and 4-bit integer codes, whose conversion to i8 costs more than one
/// token's products (so their single-token GEMV stays on f32) but is shared by a pass's
/// tokens.
pub fn dp4a_multi(format: QuantFormat) -> bool {
    DP4A_FORMATS.contains(&format)
        || matches!(format, QuantFormat::MXFP4 | QuantFormat::Fp4(_))
        || act_q8_perm(format)
}

/// Whether `act_q8` stores a matmul input on `format` with each 8 elements reordered as
/// 0, 2, 4, 6, 1, 3, 5, 7: the formats whose code words hold 8 consecutive elements in
/// nibbles, which `unit_q8` splits into even and odd bytes.
pub fn act_q8_perm(format: QuantFormat) -> bool {
    match format {
        QuantFormat::Fp4(_) => true,
        QuantFormat::Int(i) => i.bits.bits() == 4,
        _ => false,
    }
}

/// Workgroup size of the format-less kernels (`WG` in their files).
pub fn op_workgroup_size(op: Op) -> u32 {
    match op {
        // One workgroup per row or head: wider groups keep more loads in flight (decode).
        Op::Argmax | Op::RmsNorm | Op::AddRmsNorm => 256,
        Op::SampleCands | Op::SamplePick => 256,
        // One workgroup per token, one thread per expert.
        Op::MoeRoute | Op::MoeSort => 256,
        // One workgroup per row, a vec4 per thread and pass.
        Op::GatherRows | Op::MlaQPack | Op::MlaKvDense => 256,
        Op::AttnPaged | Op::AttnSplit | Op::AttnPrefill | Op::AttnFlash => 128,
        Op::AttnMla | Op::MlaLatent | Op::MlaSoftmax => 128,
        _ => 64,
    }
}

/// Threads that share one GEMV row quad (`GW`); each streams 4 rows × 128 / GW units per x
/// tile. 64 for the default variants (most workgroups, best for 4096-row weights), 16 for
/// the wide ones ([`gemv_wide`]). `MARLIN_GEMV_GW` (16, 32 or 64) overrides the default
/// variants, for tuning on other GPUs.
pub fn gemv_group_threads(_format: QuantFormat, variant: Variant) -> u32 {
    if matches!(variant, Variant::SubgroupWide | Variant::Dp4aWide) {
        return 16;
    }
    if variant == Variant::Narrow {
        return 8;
    }
    if variant == Variant::SubgroupDeep {
        return 128;
    }
    gw_override().unwrap_or(64)
}

/// Whether short float weights run [`Variant::SubgroupDeep`] (`MARLIN_GEMV_DEEP=0`: no,
/// for A/B runs); read once per process.
fn deep_enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("MARLIN_GEMV_DEEP").map_or(true, |v| v != "0"))
}

/// `MARLIN_GEMV_GW` when it is 16, 32 or 64; read once per process (the launchers ask on
/// every dispatch).
fn gw_override() -> Option<u32> {
    static GW: OnceLock<Option<u32>> = OnceLock::new();
    *GW.get_or_init(|| {
        std::env::var("MARLIN_GEMV_GW")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|gw| matches!(gw, 16 | 32 | 64))
    })
}

/// Output rows one GEMV workgroup of `format` and `variant` covers (`NR` = 4 rows per thread
/// group).
pub fn gemv_rows(format: QuantFormat, variant: Variant) -> u32 {
    4 * GEMV_WG / gemv_group_threads(format, variant)
}

/// Weight rows from which the GEMV runs its wide variant.
pub const GEMV_WIDE_MIN_ROWS: usize = 8192;

/// Weight rows up to which a float GEMV runs its deep variant (MoE routers: 64 to 256
/// experts).
pub const GEMV_DEEP_MAX_ROWS: usize = 256;

/// Formats with a [`Variant::SubgroupDeep`] GEMV: the float formats of routers.
pub fn gemv_deep_format(format: QuantFormat) -> bool {
    matches!(
        format,
        QuantFormat::F32 | QuantFormat::F16 | QuantFormat::BF16
    )
}

/// The GEMV variant for a `rows`-row weight: the wide form of `variant` for tall weights of
/// the formats where it measured faster (H200, 14336×4096: f16 3,195 → 3,458 GB/s, q8_0
/// 2,781 → 3,103, q4_0 2,059 → 2,363; fp4_g128 lost 4%, 4096-row weights lose up to half:
/// too few workgroups), the deep form for short float weights, else `variant`.
pub fn gemv_wide(variant: Variant, format: QuantFormat, rows: usize) -> Variant {
    let deep = rows <= GEMV_DEEP_MAX_ROWS && gemv_deep_format(format) && deep_enabled();
    if deep && variant == Variant::Subgroup && gw_override().is_none() {
        return Variant::SubgroupDeep;
    }
    let measured = matches!(
        format,
        QuantFormat::F16 | QuantFormat::Q8_0 | QuantFormat::Q4_0
    );
    if rows < GEMV_WIDE_MIN_ROWS || !measured || gw_override().is_some() {
        return variant;
    }
    match variant {
        Variant::Subgroup => Variant::SubgroupWide,
        Variant::Dp4a => Variant::Dp4aWide,
        v => v,
    }
}

/// Threads that share one Dp4a `gemv_multi` row quad (`TU`, across K), as in the GEMV: 64
/// for [`Variant::Dp4a`] (16 rows per workgroup: short weights and long rows still fill
/// the GPU), 16 for [`Variant::Dp4aWide`] (64 rows per workgroup).
pub fn gemv_multi_lanes(variant: Variant) -> u32 {
    match variant {
        Variant::Dp4aWide => 16,
        _ => 64,
    }
}

/// Output rows one `gemv_multi` workgroup covers (`NR`): 16 row pairs of 16 threads for
/// the f32-activation body; 4 rows per row quad of [`gemv_multi_lanes`] threads for the
/// Dp4a body (its 8-bit activations come ready from `act_q8`, so a thread has registers
/// for four rows).
pub fn gemv_multi_rows(variant: Variant) -> u32 {
    match variant {
        Variant::Dp4a | Variant::Dp4aWide => 4 * GEMV_WG / gemv_multi_lanes(variant),
        _ => 32,
    }
}

/// Workgroups from which the Dp4a `gemv_multi` runs its wide variant: two waves of an
/// H100/H200's 132 SMs. Below that, 64 lanes per row quad spread a weight's K over 4x
/// the workgroups (H100, q4_0 4096x14336 at 8 tokens: 64 wide workgroups took 112 µs
/// against 21 µs for one token's GEMV). Rows of up to 4096 columns lower it to one wave
/// from two passes on ([`GEMV_MULTI_WIDE_MIN_WGS_SHORT_K`]); longer rows raise it
/// ([`GEMV_MULTI_WIDE_MIN_WGS_LONG_K`]).
pub const GEMV_MULTI_WIDE_MIN_WGS: usize = 264;

/// The wide threshold for rows of at most 4096 columns from two passes (9 tokens) on: the
/// narrow kernel's 64 lanes then walk only two units each, and one wave of wide workgroups
/// finishes sooner (H200, q4_0, µs narrow / wide: 4096x4096 at 24 tokens 30.6 / 28.4, at 32
/// 39.0 / 28.4; 6144x4096 at 16 tokens 30.0 / 28.8; run "AP").
pub const GEMV_MULTI_WIDE_MIN_WGS_SHORT_K: usize = 192;

/// The wide threshold for rows longer than 4096 columns, where each narrow thread has
/// several units to walk (H200, q4_0 4096x14336, µs narrow / wide: 48 tokens 142.1 / 163.1,
/// 64 tokens 169.1 / 169.2; run "AP").
pub const GEMV_MULTI_WIDE_MIN_WGS_LONG_K: usize = 512;

/// The Dp4a `gemv_multi` variant for a `rows` x `cols` weight and `n_tokens` tokens: wide
/// once its grid passes the thresholds above; `MARLIN_GEMV_MULTI_WIDE=0|1` forces either
/// (A/B on hardware). Other variants run as given.
pub fn gemv_multi_wide(variant: Variant, rows: usize, cols: usize, n_tokens: usize) -> Variant {
    if variant != Variant::Dp4a {
        return variant;
    }
    let passes = n_tokens.div_ceil(gemv_multi_tokens() as usize);
    let wide_wgs = rows.div_ceil(gemv_multi_rows(Variant::Dp4aWide) as usize) * passes;
    static FORCED: OnceLock<Option<bool>> = OnceLock::new();
    let forced = FORCED.get_or_init(
        || match std::env::var("MARLIN_GEMV_MULTI_WIDE").as_deref() {
            Ok("0") => Some(false),
            Ok("1") => Some(true),
            _ => None,
        },
    );
    let min_wgs = match (cols <= 4096, passes >= 2) {
        (false, _) => GEMV_MULTI_WIDE_MIN_WGS_LONG_K,
        (true, true) => GEMV_MULTI_WIDE_MIN_WGS_SHORT_K,
        (true, false) => GEMV_MULTI_WIDE_MIN_WGS,
    };
    let wide = forced.unwrap_or(wide_wgs >= min_wgs);
    if wide {
        Variant::Dp4aWide
    } else {
        variant
    }
}

/// Tokens one `gemv_multi` workgroup covers by default (`MT`); more tokens run as more
/// passes (workgroups of their own, multi_tile.wgsl).
pub const GEMV_MULTI_TOKENS: u32 = 8;

/// Tokens per `gemv_multi` pass: [`GEMV_MULTI_TOKENS`], or `MARLIN_GEMV_MULTI_MT` (2, 4 or
/// 8) for tuning (fewer tokens per pass: fewer accumulators and more passes; on an H100,
/// q4_0 14336x4096 at 32 tokens took 100 µs at 4 against 98 at 8). Read once per process.
pub fn gemv_multi_tokens() -> u32 {
    static MT: OnceLock<u32> = OnceLock::new();
    *MT.get_or_init(|| {
        std::env::var("MARLIN_GEMV_MULTI_MT")
            .ok()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|mt| matches!(mt, 2 | 4 | 8))
            .unwrap_or(GEMV_MULTI_TOKENS)
    })
}
/// Default largest token count [`crate::GpuContext::matmul_op`] sends to `gemv_multi`
/// (several 8-token passes in one dispatch). 64: serving Llama-3-8B q4_0 on an H200 went from
/// 602 to 1,002 tok/s at 32 streams and from 723 to 1,153 at 64 against the coop GEMM, same
/// run for both (an older `gemv_multi`; tall weights now switch earlier, [`tall_gemm_op`]).
pub const GEMV_MULTI_MAX: usize = 64;

/// The `gemv_multi` cap of steps that hold a prompt chunk: the Dp4a formats' `gemv_multi`
/// quantizes activations to 8 bits, so longer prompt chunks keep the f32-activation GEMM
/// (SmolLM2 prompt logits within 0.03 of transformers, against 0.18 through gemv_multi).
pub const GEMV_MULTI_PROMPT_MAX: usize = 8;

/// The `gemv_multi` threshold: `MARLIN_GPU_GEMV_MULTI_MAX` (0 turns it off) or
/// [`GEMV_MULTI_MAX`]; read when a context opens.
pub fn gemv_multi_max_from_env() -> usize {
    std::env::var("MARLIN_GPU_GEMV_MULTI_MAX")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(GEMV_MULTI_MAX)
}

/// Rows from which a weight counts as tall for [`tall_gemm_op`].
pub const TALL_ROWS: usize = 8192;

/// Token count from which tall weights take the coop GEMM in place of `gemv_multi`. Serving
/// Llama-3-8B on an H200 (run "AA", one server per setting, 64 streams = 64-token steps):
/// q4_0 2,241 → 2,435 tok/s and fp4 1,869 → 2,170 with tall weights (the fused gate/up and
/// the LM head) on the GEMM above 32 tokens; 32 streams unchanged (1,892 / 1,897). From 16
/// tokens, 32 streams fell to 1,585.
pub const TALL_GEMM_MIN: usize = 33;

/// Formats whose tall weights stay on `gemv_multi` up to 64 tokens: since its branch-free
/// full passes it beats the coop GEMM there for them (H200, run "BG", µs at 64 tokens,
/// 14336×4096, `gemv_multi` / GEMM: q4_0 154.3 / 167.0, q8_0 141.0 / 184.6, against fp4_g128
/// 178.4 / 163.4 and q4_k 255.9 / 179.8; serving q4_0 at 64 streams 2,462.6 → 2,539.8 tok/s
/// with its tall weights kept on `gemv_multi`, fp4 2,364.3 → 2,248.8).
const TALL_GEMV_MULTI_FORMATS: [QuantFormat; 2] = [QuantFormat::Q4_0, QuantFormat::Q8_0];

/// `op` for a `format` weight of `rows` rows at `n_tokens` tokens: a `gemv_multi` of a tall
/// weight (≥ [`TALL_ROWS`]) becomes the GEMM from [`TALL_GEMM_MIN`] tokens, or from
/// `MARLIN_GPU_TALL_GEMM_MIN` (read once per process; a count above every `gemv_multi`
/// step turns it off), except for [`TALL_GEMV_MULTI_FORMATS`] without that override.
pub fn tall_gemm_op(op: Op, n_tokens: usize, rows: usize, format: QuantFormat) -> Op {
    static MIN: OnceLock<Option<usize>> = OnceLock::new();
    let forced = *MIN.get_or_init(|| {
        std::env::var("MARLIN_GPU_TALL_GEMM_MIN")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    let min = match forced {
        Some(m) => m,
        None if TALL_GEMV_MULTI_FORMATS.contains(&format) => usize::MAX,
        None => TALL_GEMM_MIN,
    };
    match op {
        Op::GemvMulti if rows >= TALL_ROWS && n_tokens >= min => Op::Gemm,
        op => op,
    }
}

/// The matmul op for `n_tokens` tokens when `gemv_multi` takes `2..=multi_max` of them:
/// GEMV for one token, GEMV-multi up to the threshold, GEMM above.
pub fn matmul_op_for(n_tokens: usize, multi_max: usize) -> Op {
    match n_tokens {
        0 | 1 => Op::Gemv,
        n if n <= multi_max => Op::GemvMulti,
        _ => Op::Gemm,
    }
}

/// Whether the Dp4a MoE GEMV loads a one-tile row's first weights before its x fill
/// (`MARLIN_GPU_MOE_PREFETCH=0`: after, for A/B runs); read once per process. H200,
/// GLM-4.7-Flash q4_0 decode (run "EW"): 177.5 / 176.6 → 179.5 / 178.2 tok/s. The dense
/// GEMV gained nothing from it (Llama-3-8B q4_0: 347.4 → 346.3), and formats that decode
/// units in pairs (q4_k) lose their pairs on this path (dense 14336×4096: 17.7 → 25.0 µs),
/// so they keep the plain order.
pub fn moe_prefetch() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("MARLIN_GPU_MOE_PREFETCH").map_or(true, |v| v != "0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tall_weights_take_the_gemm_above_32_tokens() {
        if std::env::var_os("MARLIN_GPU_TALL_GEMM_MIN").is_some() {
            return;
        }
        let (multi, fp4) = (Op::GemvMulti, QuantFormat::Fp4(marlin_core::Group::G128));
        assert_eq!(tall_gemm_op(multi, 32, 28672, fp4), Op::GemvMulti);
        assert_eq!(tall_gemm_op(multi, 33, 28672, fp4), Op::Gemm);
        assert_eq!(tall_gemm_op(multi, 64, 128256, fp4), Op::Gemm);
        assert_eq!(tall_gemm_op(multi, 64, 4096, fp4), Op::GemvMulti);
        assert_eq!(tall_gemm_op(Op::Gemv, 1, 128256, fp4), Op::Gemv);
        assert_eq!(tall_gemm_op(Op::Gemm, 100, 4096, fp4), Op::Gemm);
        // q4_0 and q8_0 keep gemv_multi for every step it takes.
        for f in [QuantFormat::Q4_0, QuantFormat::Q8_0] {
            assert_eq!(tall_gemm_op(multi, 64, 128256, f), Op::GemvMulti);
        }
        assert_eq!(tall_gemm_op(multi, 33, 28672, QuantFormat::Q4_K), Op::Gemm);
    }

    #[test]
    fn gemv_multi_goes_wide_once_its_grid_fills_the_gpu() {
        if std::env::var_os("MARLIN_GEMV_MULTI_WIDE").is_some()
            || std::env::var_os("MARLIN_GEMV_MULTI_MT").is_some()
        {
            return;
        }
        assert_eq!(
            (
                gemv_multi_rows(Variant::Dp4a),
                gemv_multi_rows(Variant::Dp4aWide)
            ),
            (16, 64)
        );
        assert_eq!(gemv_multi_rows(Variant::Plain), 32);
        // 14336 x 4096: 224 wide workgroups per 8-token pass.
        assert_eq!(
            gemv_multi_wide(Variant::Dp4a, 14336, 4096, 8),
            Variant::Dp4a
        );
        assert_eq!(
            gemv_multi_wide(Variant::Dp4a, 14336, 4096, 16),
            Variant::Dp4aWide
        );
        // 4096 x 4096: 64 per pass, wide from 3 passes (192); 4096 x 14336 from 8 (512).
        assert_eq!(
            gemv_multi_wide(Variant::Dp4a, 4096, 4096, 16),
            Variant::Dp4a
        );
        assert_eq!(
            gemv_multi_wide(Variant::Dp4a, 4096, 4096, 17),
            Variant::Dp4aWide
        );
        assert_eq!(
            gemv_multi_wide(Variant::Dp4a, 4096, 14336, 56),
            Variant::Dp4a
        );
        assert_eq!(
            gemv_multi_wide(Variant::Dp4a, 4096, 14336, 57),
            Variant::Dp4aWide
        );
        assert_eq!(
            gemv_multi_wide(Variant::Plain, 14336, 4096, 64),
            Variant::Plain
        );
    }

    #[test]
    fn tall_weights_of_the_measured_formats_run_the_wide_gemv() {
        if std::env::var_os("MARLIN_GEMV_GW").is_some() {
            return;
        }
        let q4 = QuantFormat::Q4_0;
        assert_eq!(gemv_wide(Variant::Dp4a, q4, 14336), Variant::Dp4aWide);
        assert_eq!(
            gemv_wide(Variant::Subgroup, QuantFormat::F16, 8192),
            Variant::SubgroupWide
        );
        assert_eq!(gemv_wide(Variant::Dp4a, q4, 4096), Variant::Dp4a);
        assert_eq!(gemv_wide(Variant::Plain, q4, 14336), Variant::Plain);
        assert_eq!(
            gemv_wide(Variant::Subgroup, QuantFormat::Q4_K, 14336),
            Variant::Subgroup
        );
        assert_eq!(gemv_rows(q4, Variant::Dp4aWide), 64);
        let f32 = QuantFormat::F32;
        assert_eq!(gemv_wide(Variant::Subgroup, f32, 64), Variant::SubgroupDeep);
        assert_eq!(gemv_wide(Variant::Subgroup, f32, 257), Variant::Subgroup);
        assert_eq!(gemv_wide(Variant::Plain, f32, 64), Variant::Plain);
        assert_eq!(gemv_wide(Variant::Dp4a, q4, 64), Variant::Dp4a);
        assert_eq!(gemv_rows(f32, Variant::SubgroupDeep), 8);
        assert_eq!(gemv_rows(q4, Variant::Dp4a), 16);
    }
}
