//! The cooperative-matrix (tensor core) GEMM kernels (`gemm_body_coop_chunk.wgsl`): their
//! token tiles, the tile the launcher picks per token count, and their specs
//! (`MARLIN_GPU_COOP=0` turns coop off; `MARLIN_GPU_COOP_TILE=16|32|64` fixes the token tile;
//! `MARLIN_GPU_COOP_KMAJOR=1` stages the weight tile K-major), and the K splits of small
//! grids ([`coop_splits`]: off by default; `MARLIN_GPU_COOP_SPLITK=auto` picks them by a
//! wave model, `=N` runs N wherever K has N chunks). The first coop body (one unit per barrier pair, 64 x 64 tiles,
//! 41.5 TFLOP/s against 65.6 on an H200) is gone.

use std::sync::OnceLock;

use marlin_core::QuantFormat;

use super::{matmul_io_parts, BindLayout, KernelKey, KernelSpec, Variant, GEMM_COOP_WG};
use crate::format_parts::{format_defines, format_parts, has_entry_file};
use crate::op::{kernel_name, Op};

/// Whether `MARLIN_GPU_COOP_KMAJOR=1` asks for the chunked body's K-major weight tile
/// (`WKM` 1: conflict-free stores, column-major A loads) in place of the row-major one;
/// read once per process.
pub fn coop_kmajor() -> bool {
    static KMAJOR: OnceLock<bool> = OnceLock::new();
    *KMAJOR.get_or_init(|| std::env::var("MARLIN_GPU_COOP_KMAJOR").as_deref() == Ok("1"))
}

/// `MARLIN_GPU_COOP_TILE` = 16, 32 or 64: that token tile for every token count (A/B of
/// the tile choice on hardware); read once per process.
fn forced_tile() -> Option<Variant> {
    static TILE: OnceLock<Option<Variant>> = OnceLock::new();
    *TILE.get_or_init(
        || match std::env::var("MARLIN_GPU_COOP_TILE").ok()?.trim() {
            "16" => Some(Variant::CoopT16),
            "32" => Some(Variant::CoopT32),
            "128" => Some(Variant::CoopT128),
            "64" => Some(Variant::Coop),
            _ => None,
        },
    )
}

/// The chunked body's tile parameter `TT` (tiles of 32 TT rows x 16 TT tokens) for a coop
/// variant; `None` for other variants.
pub fn coop_tt(variant: Variant) -> Option<u32> {
    match variant {
        Variant::Coop => Some(4),
        Variant::CoopT32 => Some(2),
        Variant::CoopT128 => Some(8),
        Variant::CoopT16 => Some(1),
        _ => None,
    }
}

/// Workgroups of the chunked coop GEMM that run at once on the device: about one per
/// SM on an H200 (132 SMs), measured from how the time of one tile grows with the grid.
const COOP_CONCURRENT_WGS: f64 = 132.0;

/// Time of one workgroup of each tile (TT = 1, 2, 4, 8) relative to TT = 1, at equal K
/// (H200, q4_0: 112 / 232 / 493 µs on a 4096 × 14336 weight). The 128 x 128 tile costs what
/// the 64-token one does (run "AL", q4_0 14336 x 4096 at 2048 tokens: 146 against 147 µs a
/// wave), for twice the tokens: its weight staging, which bounds the body, is the same.
const COOP_TILE_COST: [(Variant, usize, f64); 4] = [
    (Variant::CoopT16, 1, 1.0),
    (Variant::CoopT32, 2, 2.07),
    (Variant::Coop, 4, 4.4),
    (Variant::CoopT128, 8, 4.4),
];

/// The variant the launcher runs for `variant` on a `rows`-row weight and `n_tokens`
/// tokens: [`Variant::Coop`] becomes the token tile (16, 32, 64 or 128) with the least
/// estimated time, waves of [`COOP_CONCURRENT_WGS`] workgroups times one workgroup's cost.
/// Small grids favour small tiles (more workgroups in flight), large ones big tiles (less
/// dequantization per token): on an H200 a 32-token step of a 4096-row weight runs 16-token
/// tiles, of a 28672-row weight 32-token tiles. `MARLIN_GPU_COOP_TILE` forces one tile.
/// Every other variant (an explicit tile included) runs as given.
pub fn gemm_variant_for(variant: Variant, rows: usize, n_tokens: usize) -> Variant {
    if variant != Variant::Coop {
        return variant;
    }
    if let Some(tile) = forced_tile() {
        return tile;
    }
    let cost = |(_, tt, unit): (Variant, usize, f64)| {
        let wgs = rows.div_ceil(32 * tt.min(4)) * n_tokens.max(1).div_ceil(16 * tt);
        (wgs as f64 / COOP_CONCURRENT_WGS).max(1.0) * unit
    };
    // Ties go to the smaller tile (listed first).
    COOP_TILE_COST
        .into_iter()
        .fold((Variant::CoopT16, f64::INFINITY), |best, c| {
            let t = cost(c);
            if t < best.1 {
                (c.0, t)
            } else {
                best
            }
        })
        .0
}

/// `MARLIN_GPU_COOP_SPLITK`: unset (or unparsable) `Some(1)`, no split; `N` (N >= 1) that
/// many K splits for every coop GEMM; `auto` `None`, the wave model. Read once per process.
fn forced_splits() -> Option<usize> {
    static SPLITS: OnceLock<Option<usize>> = OnceLock::new();
    *SPLITS.get_or_init(|| match std::env::var("MARLIN_GPU_COOP_SPLITK") {
        Ok(v) if v.trim() == "auto" => None,
        Ok(v) => Some(
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .unwrap_or(1),
        ),
        Err(_) => Some(1),
    })
}

/// Workgroups split-K aims for: at least 4 waves of [`COOP_CONCURRENT_WGS`]. A 448-workgroup
/// grid (14336 rows, 8 tokens: 3.4 waves) still runs at the small-token floor, so fewer is
/// not enough.
const SPLITK_TARGET_WGS: usize = 4 * COOP_CONCURRENT_WGS as usize;
/// Fewest K chunks per split: each split pays its own prologue, epilogue and partial tile.
const SPLITK_MIN_CHUNKS: usize = 4;
/// Most splits (each adds a partial output to write and read back).
const SPLITK_MAX: usize = 16;
/// Largest token count split by default: larger steps (prefill) fill the device with token
/// tiles, and their partials would cost more traffic than the weight itself.
const SPLITK_MAX_TOKENS: usize = 128;

/// K splits (grid z) of coop GEMM tile `variant` on a `rows` x `cols` weight chunk for
/// `n_tokens` tokens. Off by default: on an H100 splitting did not pay (q4_0 14336 x 4096:
/// 8 tokens 123 -> 111 µs with 2 splits, but 32 tokens 131 -> 143 with 3 and 64 tokens 140
/// -> 171 with 5), as the small-token floor is about one workgroup per SM at a time, whose
/// total chunk count a split does not change. `MARLIN_GPU_COOP_SPLITK=N` forces N (at most
/// one split per chunk); `=auto` runs the wave model: 1 (no split) for other variants, at
/// large token counts and for grids
/// of at least [`SPLITK_TARGET_WGS`] workgroups; else the fewest splits that reach it, each
/// of at least [`SPLITK_MIN_CHUNKS`] chunks of the tile's K (256 / TT elements), at most
/// [`SPLITK_MAX`]. On a 14336 x 4096 weight: 8 or 16 tokens (16-token tiles, 448
/// workgroups of 16 chunks) run 2 splits; 32 (32-token tiles, 224 of 32) 3; 64 (64-token
/// tiles, 112 of 64) 5; 512 tokens none.
pub fn coop_splits(variant: Variant, rows: usize, cols: usize, n_tokens: usize) -> usize {
    let Some(tt) = coop_tt(variant).map(|t| t as usize) else {
        return 1;
    };
    let chunks = cols.div_ceil(32).div_ceil(8 / tt);
    if let Some(n) = forced_splits() {
        return n.min(chunks).max(1);
    }
    wave_splits(tt, rows, chunks, n_tokens)
}

/// The wave model of [`coop_splits`] (`MARLIN_GPU_COOP_SPLITK=auto`) for token tile `tt`
/// and `chunks` K chunks.
fn wave_splits(tt: usize, rows: usize, chunks: usize, n_tokens: usize) -> usize {
    let wgs = rows.div_ceil(32 * tt.min(4)) * n_tokens.max(1).div_ceil(16 * tt);
    if n_tokens > SPLITK_MAX_TOKENS || wgs == 0 || wgs >= SPLITK_TARGET_WGS {
        return 1;
    }
    let by_chunks = (chunks / SPLITK_MIN_CHUNKS).max(1);
    SPLITK_TARGET_WGS
        .div_ceil(wgs)
        .min(by_chunks)
        .min(SPLITK_MAX)
}

/// The spec of a coop GEMM `key` (`Op::Gemm` or `Op::MoeGemm`, a coop variant): the
/// chunked body with its `TT` and the weight layout `MARLIN_GPU_COOP_KMAJOR` picks.
pub(super) fn coop_spec(key: KernelKey) -> Option<KernelSpec> {
    match key.op {
        Op::Gemm => coop_chunk_spec(key.format, key.variant, coop_kmajor()),
        Op::MoeGemm => moe_gemm_spec(key.format, key.variant, coop_kmajor()),
        _ => None,
    }
}

/// The chunked body's kernel for `format` and coop `variant` (its token tile), with the
/// weight tile K-major (`kmajor`) or row major; `None` for other variants.
pub fn coop_chunk_spec(format: QuantFormat, variant: Variant, kmajor: bool) -> Option<KernelSpec> {
    build(Op::Gemm, format, variant, kmajor)
}

/// The grouped MoE GEMM (`moe_gemm`) for `format` and coop `variant`: the same chunked
/// body, placed per expert chunk by `gemm/moe_gemm_tile.wgsl` (no K splits); trellis
/// experts on the tiles of Q (their launcher records the sides).
pub fn moe_gemm_spec(format: QuantFormat, variant: Variant, kmajor: bool) -> Option<KernelSpec> {
    build(Op::MoeGemm, format, variant, kmajor)
}

fn build(op: Op, format: QuantFormat, variant: Variant, kmajor: bool) -> Option<KernelSpec> {
    let tt = coop_tt(variant)?;
    let key = KernelKey {
        op,
        format,
        variant,
    };
    let name = kernel_name(op, format);
    let mut parts = vec!["common/enable_coop.wgsl".to_string()];
    let (run, layout) = match op {
        Op::MoeGemm => {
            parts.push("common/matmul_io.wgsl".to_string());
            parts.push("common/out_plain.wgsl".to_string());
            parts.push("gemm/moe_gemm_tile.wgsl".to_string());
            ("moe_gemm_run", BindLayout::MatmulIds)
        }
        _ => {
            parts.extend(matmul_io_parts());
            ("gemm_run", BindLayout::Matmul)
        }
    };
    parts.push("common/ids_subgroup.wgsl".to_string());
    parts.extend(format_parts(format)?);
    parts.push("gemm/gemm_body_coop_chunk.wgsl".to_string());
    parts.push(match format.is_trellis() {
        true => "gemm/coop_stage_trellis.wgsl".to_string(),
        false => "gemm/coop_stage_unit.wgsl".to_string(),
    });
    let mut entry = String::new();
    if op == Op::Gemm && has_entry_file(format) {
        parts.push(format!("gemm/{name}.wgsl"));
    } else {
        entry =
            format!("@compute @workgroup_size(WG)\nfn {name}(ids: Ids) {{\n    {run}(ids);\n}}\n");
    }
    let mut defines = format_defines(format);
    defines.extend_from_slice(&[("TT", tt), ("WKM", u32::from(kmajor))]);
    Some(KernelSpec {
        key,
        name,
        parts,
        workgroup_size: GEMM_COOP_WG,
        rows_per_group: 32 * tt.min(4),
        tokens_per_group: 16 * tt,
        layout,
        features: wgpu::Features::SHADER_F16
            | wgpu::Features::SUBGROUP
            | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX,
        defines,
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coop_tiles_follow_the_measured_cost_model() {
        let pick = |rows, n| gemm_variant_for(Variant::Coop, rows, n);
        if let Some(tile) = forced_tile() {
            assert_eq!((pick(64, 1), pick(4096, 512)), (tile, tile));
            return;
        }
        // The H200 measurements the model was fitted to: the fastest tile of each case.
        assert_eq!(pick(4096, 16), Variant::CoopT16);
        assert_eq!(pick(4096, 32), Variant::CoopT16);
        assert_eq!(pick(4096, 64), Variant::CoopT32);
        assert_eq!(pick(4096, 128), Variant::CoopT32);
        assert_eq!(pick(6144, 32), Variant::CoopT32);
        assert_eq!(pick(6144, 128), Variant::Coop);
        assert_eq!(pick(28672, 16), Variant::CoopT16);
        assert_eq!(pick(28672, 32), Variant::CoopT32);
        assert_eq!(pick(28672, 64), Variant::Coop);
        assert_eq!(pick(28672, 512), Variant::CoopT128);
        // Run "AL": 128 x 128 tiles from 256 tokens on 14336 rows (288 against 597 µs) and
        // at 512 on 4096 (196 against 267), not at 256 on 4096 (198 against 137).
        assert_eq!(pick(14336, 256), Variant::CoopT128);
        assert_eq!(pick(4096, 512), Variant::CoopT128);
        assert_eq!(pick(4096, 256), Variant::Coop);
        assert_eq!(
            gemm_variant_for(Variant::CoopT16, 4096, 100),
            Variant::CoopT16
        );
        assert_eq!(gemm_variant_for(Variant::Plain, 4096, 5), Variant::Plain);
    }

    #[test]
    fn splits_fill_small_grids_only() {
        if let Some(s) = forced_splits() {
            // Forced (1 by default): that many, at most one per chunk (K 256: 1, 2 or 4).
            let split = |v, rows, cols, n| coop_splits(v, rows, cols, n);
            assert_eq!(split(Variant::CoopT16, 64, 4096, 512), s.min(16));
            assert_eq!(split(Variant::CoopT16, 64, 256, 8), 1);
            assert_eq!(split(Variant::Coop, 64, 256, 8), s.min(4));
            assert_eq!(split(Variant::Plain, 64, 4096, 8), 1);
        }
        // The wave model (`auto`), measured small-token floor, 14336 x 4096, with the tile
        // each count runs.
        let split = |v, rows, cols: usize, n| {
            let tt = coop_tt(v).map_or(0, |t| t as usize);
            match tt {
                0 => 1,
                _ => wave_splits(tt, rows, cols.div_ceil(32).div_ceil(8 / tt), n),
            }
        };
        let pick = |n| gemm_variant_for(Variant::Coop, 14336, n);
        assert_eq!(split(pick(8), 14336, 4096, 8), 2);
        assert_eq!(split(pick(16), 14336, 4096, 16), 2);
        assert_eq!(split(pick(32), 14336, 4096, 32), 3);
        assert_eq!(split(pick(64), 14336, 4096, 64), 5);
        // Prefill: unchanged, on tall and short weights alike.
        assert_eq!(split(pick(512), 14336, 4096, 512), 1);
        assert_eq!(split(Variant::Coop, 4096, 14336, 512), 1);
        // 4096 x 14336 (down projection), 16-token tiles: 128 workgroups of 56 chunks; then
        // tiny grids, where the 4-chunk floor (56 / 4) and the cap bind.
        assert_eq!(split(Variant::CoopT16, 4096, 14336, 16), 5);
        assert_eq!(split(Variant::CoopT16, 64, 14336, 1), 14);
        assert_eq!(split(Variant::CoopT16, 32, 1 << 20, 1), SPLITK_MAX);
        // Short K: no split shorter than 4 chunks (K 1024 = 4 chunks of 256).
        assert_eq!(split(Variant::CoopT16, 64, 1024, 8), 1);
        assert_eq!(split(Variant::CoopT16, 64, 2048, 8), 2);
        // A grid of 4 waves or more: no split.
        assert_eq!(split(Variant::CoopT16, 32 * 528, 4096, 8), 1);
        assert_eq!(split(Variant::CoopT16, 32 * 527, 4096, 8), 2);
        // Not a coop tile.
        assert_eq!(split(Variant::Plain, 64, 4096, 8), 1);
    }

    #[test]
    fn tiles_follow_tt() {
        for (v, tile) in [
            (Variant::CoopT16, (32, 16)),
            (Variant::CoopT32, (64, 32)),
            (Variant::Coop, (128, 64)),
        ] {
            let key = KernelKey {
                op: Op::Gemm,
                format: QuantFormat::Q4_0,
                variant: v,
            };
            let s = coop_spec(key).expect("coop spec");
            assert_eq!((s.rows_per_group, s.tokens_per_group), tile, "{v:?}");
            assert_eq!(s.workgroup_size, 128);
            assert!(s.defines.contains(&("TT", tile.1 / 16)));
            let km = coop_chunk_spec(QuantFormat::Q4_0, v, true).expect("k-major spec");
            assert!(km.defines.contains(&("WKM", 1)));
            assert_eq!((km.rows_per_group, km.tokens_per_group), tile);
        }
        let gemv = KernelKey {
            op: Op::Gemv,
            format: QuantFormat::Q4_0,
            variant: Variant::Coop,
        };
        assert!(coop_spec(gemv).is_none());
    }
}
