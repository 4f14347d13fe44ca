//! `GpuExperts`: every routed expert's matrices of one MoE projection stacked row-wise into
//! one weight (one buffer binding), so one `moe_gemv` serves all token slots. Trellis
//! experts stack their tiles of Q and keep every matrix's own `suh` / `svh` side by side in
//! one buffer each, for `moe_hadamard_scale` on both sides of the GEMV.

use marlin_core::formats::trellis::{had_block, layout};
use marlin_core::{QTensor, QuantFormat};

use crate::weight_trellis::{storage_with, upload_tiles};
use crate::{Error, GpuContext, GpuWeight, Result};

/// The per-matrix sides of stacked trellis experts, `W_m = diag(svh_m) H Q_m H diag(suh_m)`.
#[derive(Debug)]
pub struct ExpertSides {
    /// `[mats, cols]` f32: matrix m's `suh` at `m · cols`.
    pub suh: wgpu::Buffer,
    /// `[mats, rows]` f32: matrix m's `svh` at `m · rows` (`rows` of one matrix).
    pub svh: wgpu::Buffer,
    /// Hadamard block along the inputs.
    pub had_k: usize,
    /// Hadamard block along one matrix's outputs.
    pub had_n: usize,
}

/// One MoE projection of every expert on the GPU.
#[derive(Debug)]
pub struct GpuExperts {
    /// All matrices stacked: `[n_experts · parts · mat_rows, cols]`, one chunk.
    pub w: GpuWeight,
    pub n_experts: usize,
    /// Stacked matrices per expert: 1, or 2 for trellis gate and up (each with its own
    /// sides); other formats fuse an expert's matrices into one of `parts · rows` rows.
    pub parts: usize,
    /// Rows of one stacked matrix.
    pub mat_rows: usize,
    /// Trellis sides (`None` for other formats).
    pub sides: Option<ExpertSides>,
}

impl GpuExperts {
    /// Upload `mats` (expert-major: expert e's `per_expert` matrices at `e · per_expert ..`),
    /// all `[rows, cols]` in one format and rotation.
    pub fn upload(ctx: &GpuContext, mats: &[&QTensor], per_expert: usize) -> Result<GpuExperts> {
        const OP: &str = "expert upload";
        let first = mats
            .first()
            .ok_or_else(|| Error::shape(OP, "no expert matrices"))?;
        let (format, rows, cols, hadamard) =
            (first.format, first.rows(), first.cols(), first.hadamard());
        let same = mats.iter().all(|t| {
            t.shape.len() == 2
                && t.format == format
                && t.rows() == rows
                && t.cols() == cols
                && t.hadamard() == hadamard
        });
        if !same || per_expert == 0 || !mats.len().is_multiple_of(per_expert) {
            return Err(Error::shape(
                OP,
                format!(
                    "{} matrices, {per_expert} per expert: need one 2-D shape, format and \
                     rotation",
                    mats.len()
                ),
            ));
        }
        let n_experts = mats.len() / per_expert;
        let limit = ctx.max_binding();
        let (w, parts, mat_rows, sides) = if let QuantFormat::Trellis(f) = format {
            if hadamard > 0 {
                return Err(Error::Unsupported {
                    op: "moe_gemv (trellis stored rotated)",
                    format: format.name(),
                });
            }
            let lay = layout(f, rows, cols)?;
            let mut tiles = Vec::with_capacity(mats.len() * lay.suh_at);
            let (mut suh, mut svh) = (Vec::new(), Vec::new());
            for t in mats {
                let b = t.bytes();
                tiles.extend_from_slice(&b[..lay.suh_at]);
                suh.extend_from_slice(&b[lay.suh_at..lay.svh_at]);
                svh.extend_from_slice(&b[lay.svh_at..lay.bytes]);
            }
            let w = upload_tiles(ctx, format, mats.len() * rows, cols, &tiles, limit)?;
            let sides = ExpertSides {
                suh: storage_with(ctx, OP, &suh)?,
                svh: storage_with(ctx, OP, &svh)?,
                had_k: had_block(cols),
                had_n: had_block(rows),
            };
            (w, per_expert, rows, Some(sides))
        } else {
            let mut bytes = Vec::with_capacity(mats.iter().map(|t| t.bytes().len()).sum());
            for t in mats {
                bytes.extend_from_slice(t.bytes());
            }
            let total = mats.len() * rows;
            let mut w = GpuWeight::from_bytes(ctx, format, total, cols, &bytes, limit)?;
            w.hadamard = hadamard;
            (w, 1, per_expert * rows, None)
        };
        if w.chunks.len() != 1 {
            return Err(Error::TooLarge {
                what: format!("stacked {format} experts of [{rows}, {cols}]"),
                bytes: w.chunks.iter().map(|c| c.buffer.size()).sum(),
                limit,
            });
        }
        Ok(GpuExperts {
            w,
            n_experts,
            parts,
            mat_rows,
            sides,
        })
    }

    /// Output floats of one slot (all of its expert's matrices side by side).
    pub fn slot_rows(&self) -> usize {
        self.parts * self.mat_rows
    }
}
