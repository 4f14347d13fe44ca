//! The tile-kernel contract shared by every instruction set: what a kernel reads, what it
//! writes, and the per-format table of kernel entry points.

/// Activations as a kernel sees them. Unused parts are empty slices.
pub(crate) struct Acts<'a> {
    /// f32 activations `[n_tokens * cols]` (float weight formats).
    pub f: &'a [f32],
    /// int8 activations `[n_tokens * cols]` (quantized weight formats).
    pub qs: &'a [i8],
    /// 32-element formats: per-block `[d, d·Σq]` `[n_tokens * blocks_per_row]`.
    pub ds: &'a [[f32; 2]],
    /// 32-element formats, tokens in groups of 4: per (group, block) the four tokens' `d`
    /// then their four `d·Σq` (`[n_tokens / 4 * blocks_per_row * 8]`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub grp: &'a [f32],
    /// 256-element formats: per-block scale `[n_tokens * blocks_per_row]`.
    pub d: &'a [f32],
    /// Per 16-element group `Σq` `[n_tokens * blocks_per_row * 16]` (256-element formats).
    pub bsums: &'a [i16],
}

/// Everything a tile kernel needs for one matmul call.
pub(crate) struct Ctx<'a> {
    /// Packed weight rows, `rows * row_bytes` bytes.
    pub w: &'a [u8],
    pub row_bytes: usize,
    pub rows: usize,
    pub cols: usize,
    pub n_tokens: usize,
    pub acts: Acts<'a>,
    /// Output `[n_tokens * rows]`; written through a raw pointer so that tasks working on
    /// disjoint (row, token) tiles can share one `Ctx`.
    out: *mut f32,
}

// SAFETY: `out` is only written at (token, row) pairs owned by the calling task; the driver
// hands every pair to exactly one task, and the slice outlives the parallel section.
unsafe impl Sync for Ctx<'_> {}

impl<'a> Ctx<'a> {
    /// Build a context; `out` must hold `n_tokens * rows` values.
    pub fn new(
        w: &'a [u8],
        rows: usize,
        cols: usize,
        n_tokens: usize,
        acts: Acts<'a>,
        out: &'a mut [f32],
    ) -> Self {
        debug_assert_eq!(out.len(), n_tokens * rows);
        Self {
            w,
            row_bytes: w.len() / rows.max(1),
            rows,
            cols,
            n_tokens,
            acts,
            out: out.as_mut_ptr(),
        }
    }

    /// Packed bytes of weight row `r`.
    #[inline]
    pub fn row(&self, r: usize) -> &'a [u8] {
        &self.w[r * self.row_bytes..(r + 1) * self.row_bytes]
    }

    /// Write output (token `t`, row `r`).
    ///
    /// # Safety
    /// `t < n_tokens`, `r < rows`, and no other thread writes the same pair concurrently.
    #[inline]
    pub unsafe fn store(&self, t: usize, r: usize, v: f32) {
        debug_assert!(t < self.n_tokens && r < self.rows);
        // SAFETY: in bounds per the contract above.
        unsafe { *self.out.add(t * self.rows + r) = v }
    }
}

/// A tile kernel: computes rows `row..row+R` × tokens `tok..tok+T` for its compiled R, T.
///
/// # Safety
/// The tile must lie inside the matrix and be owned by the caller (see [`Ctx::store`]); the
/// activations in `Ctx` must be of the kind the kernel's table entry names, fully filled.
pub(crate) type TileFn = unsafe fn(&Ctx, usize, usize);

/// Which activation encoding a kernel reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ActKind {
    /// Raw f32 (`Acts::f`).
    F32,
    /// Int8 in 32-element blocks with scale and scaled sum (`qs`, `ds`).
    Q8B32,
    /// Int8 in 256-element blocks with scale and 16-element group sums (`qs`, `d`, `bsums`).
    Q8B256,
}

/// The entry points of one format on one instruction set.
pub(crate) struct Kernel {
    pub act: ActKind,
    /// Rows per GEMV tile, and the tile function for `gemv_r` rows × 1 token.
    pub gemv_r: usize,
    pub gemv: TileFn,
    /// Rows per GEMM tile, and its functions for 1..=4 tokens.
    pub gemm_r: usize,
    pub gemm: [TileFn; 4],
    /// One-row tiles for 1..=4 tokens (row remainders).
    pub one: [TileFn; 4],
}

/// Build a [`Kernel`] from a generic tile function `f::<PRE.., R, T>`. The `g4 = g` form
/// takes the 4-token tiles from `g::<PRE.., R>` instead (kernels that read the grouped
/// activation scales).
macro_rules! kernel {
    ($act:expr, $rv:literal, $rm:literal, $f:ident $(, $pre:tt)*; g4 = $g:ident) => {
        $crate::matmul::kernel::Kernel {
            gemm: [
                $f::<$($pre,)* $rm, 1>,
                $f::<$($pre,)* $rm, 2>,
                $f::<$($pre,)* $rm, 3>,
                $g::<$($pre,)* $rm>,
            ],
            one: [
                $f::<$($pre,)* 1, 1>,
                $f::<$($pre,)* 1, 2>,
                $f::<$($pre,)* 1, 3>,
                $g::<$($pre,)* 1>,
            ],
            ..kernel!($act, $rv, $rm, $f $(, $pre)*)
        }
    };
    ($act:expr, $rv:literal, $rm:literal, $f:ident $(, $pre:tt)*) => {
        $crate::matmul::kernel::Kernel {
            act: $act,
            gemv_r: $rv,
            gemv: $f::<$($pre,)* $rv, 1>,
            gemm_r: $rm,
            gemm: [
                $f::<$($pre,)* $rm, 1>,
                $f::<$($pre,)* $rm, 2>,
                $f::<$($pre,)* $rm, 3>,
                $f::<$($pre,)* $rm, 4>,
            ],
            one: [
                $f::<$($pre,)* 1, 1>,
                $f::<$($pre,)* 1, 2>,
                $f::<$($pre,)* 1, 3>,
                $f::<$($pre,)* 1, 4>,
            ],
        }
    };
}
pub(crate) use kernel;
