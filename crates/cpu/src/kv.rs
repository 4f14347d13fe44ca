//! Paged K/V storage of one attention layer: fixed-size blocks of token slots, addressed
//! through a sequence's block table. F16, or one-byte FP8 E4M3 / INT8 codes with a scale per
//! token per kv head ([`crate::kv_quant`]).

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::kv_quant::{QuantCode, QuantRows};
use crate::ops::f16_to_f32;

use crate::{Error, Result};

/// Shape of a paged KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLayout {
    /// Token slots per block (16).
    pub block_size: usize,
    /// K/V heads per token.
    pub n_kv_heads: usize,
    /// Values per head.
    pub head_dim: usize,
}

impl KvLayout {
    /// Values of K (or V) per token slot: `n_kv_heads · head_dim`.
    pub fn row_len(&self) -> usize {
        self.n_kv_heads * self.head_dim
    }
}

/// Element type K and V are stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvDtype {
    /// IEEE half precision.
    F16,
    /// FP8 E4M3 codes, one f32 scale (`amax / 448`) per token per kv head.
    Fp8E4M3,
    /// INT8 codes (−127..=127), one f32 scale (`amax / 127`) per token per kv head.
    Int8,
}

impl KvDtype {
    /// Bytes of K plus V that one token takes in one layer (scales included).
    pub fn bytes_per_token(self, n_kv_heads: usize, head_dim: usize) -> usize {
        let per_head = match self {
            KvDtype::F16 => 2 * head_dim,
            KvDtype::Fp8E4M3 | KvDtype::Int8 => head_dim + 4,
        };
        2 * n_kv_heads * per_head
    }

    /// The dtype named `f16`, `fp8` (or `fp8_e4m3`) or `int8`.
    pub fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "f16" | "fp16" => Ok(KvDtype::F16),
            "fp8" | "fp8_e4m3" | "e4m3" => Ok(KvDtype::Fp8E4M3),
            "int8" | "i8" => Ok(KvDtype::Int8),
            _ => Err(shape(format!(
                "unknown KV cache dtype {name:?} (f16, fp8 or int8)"
            ))),
        }
    }
}

/// Reads one head row (`head_dim` values) of K or V as f32. Row index
/// `(block · block_size + slot) · n_kv_heads + kv_head`. Attention is generic over this, so a
/// new storage type only adds an implementation.
pub trait KvRows: Sync {
    /// K row `row` into `dst` (`head_dim` values).
    fn k_row(&self, row: usize, dst: &mut [f32]);
    /// V row `row` into `dst` (`head_dim` values).
    fn v_row(&self, row: usize, dst: &mut [f32]);
}

/// F16 K and V arrays, `[block][slot][kv_head][head_dim]` each.
#[derive(Debug, Clone)]
pub struct F16Rows {
    k: Vec<f16>,
    v: Vec<f16>,
    head_dim: usize,
}

impl KvRows for F16Rows {
    #[inline]
    fn k_row(&self, row: usize, dst: &mut [f32]) {
        f16_to_f32(&self.k[row * self.head_dim..][..self.head_dim], dst);
    }

    #[inline]
    fn v_row(&self, row: usize, dst: &mut [f32]) {
        f16_to_f32(&self.v[row * self.head_dim..][..self.head_dim], dst);
    }
}

/// The storage behind a [`PagedKv`], one variant per [`KvDtype`].
#[derive(Debug, Clone)]
pub enum KvStorage {
    F16(F16Rows),
    /// FP8 E4M3 or INT8 codes with per-row scales.
    Quant(QuantRows),
}

impl KvStorage {
    /// The row reader of this storage, dynamically dispatched (slow paths only; attention
    /// matches on the variant and runs a monomorphized kernel).
    pub fn rows(&self) -> &dyn KvRows {
        match self {
            KvStorage::F16(s) => s,
            KvStorage::Quant(s) => s,
        }
    }
}

/// One layer's K and V for `num_blocks` blocks.
#[derive(Debug, Clone)]
pub struct PagedKv {
    layout: KvLayout,
    num_blocks: usize,
    storage: KvStorage,
}

impl PagedKv {
    /// F16 storage for `num_blocks` blocks. A layout whose size overflows, or that has a zero
    /// dimension, gives a cache of zero blocks (every write then fails with an error); use
    /// [`PagedKv::with_dtype`] to get that as an error instead.
    pub fn new(layout: KvLayout, num_blocks: usize) -> Self {
        Self::with_dtype(layout, num_blocks, KvDtype::F16).unwrap_or(Self {
            layout,
            num_blocks: 0,
            storage: KvStorage::F16(F16Rows {
                k: Vec::new(),
                v: Vec::new(),
                head_dim: layout.head_dim,
            }),
        })
    }

    /// Storage of type `dtype` for `num_blocks` blocks.
    pub fn with_dtype(layout: KvLayout, num_blocks: usize, dtype: KvDtype) -> Result<Self> {
        if layout.block_size == 0 || layout.n_kv_heads == 0 || layout.head_dim == 0 {
            return Err(shape(format!("zero dimension in {layout:?}")));
        }
        let len = layout
            .row_len()
            .checked_mul(layout.block_size)
            .and_then(|n| n.checked_mul(num_blocks))
            .filter(|&n| n <= isize::MAX as usize / 2)
            .ok_or_else(|| shape(format!("{num_blocks} blocks of {layout:?} overflow")))?;
        let storage = match dtype {
            KvDtype::F16 => KvStorage::F16(F16Rows {
                k: vec![f16::ZERO; len],
                v: vec![f16::ZERO; len],
                head_dim: layout.head_dim,
            }),
            KvDtype::Fp8E4M3 => KvStorage::Quant(QuantRows::new(
                QuantCode::Fp8E4M3,
                len / layout.head_dim,
                layout.head_dim,
            )),
            KvDtype::Int8 => KvStorage::Quant(QuantRows::new(
                QuantCode::Int8,
                len / layout.head_dim,
                layout.head_dim,
            )),
        };
        Ok(Self {
            layout,
            num_blocks,
            storage,
        })
    }

    /// The layout.
    pub fn layout(&self) -> KvLayout {
        self.layout
    }

    /// Number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.num_blocks
    }

    /// Storage element type.
    pub fn dtype(&self) -> KvDtype {
        match &self.storage {
            KvStorage::F16(_) => KvDtype::F16,
            KvStorage::Quant(q) => match q.code() {
                QuantCode::Fp8E4M3 => KvDtype::Fp8E4M3,
                QuantCode::Int8 => KvDtype::Int8,
            },
        }
    }

    /// The raw storage (attention dispatches on it).
    pub fn storage(&self) -> &KvStorage {
        &self.storage
    }

    /// Checks that `id` names a block of this cache.
    pub fn check_block(&self, id: u32) -> Result<()> {
        if (id as usize) < self.num_blocks {
            Ok(())
        } else {
            Err(Error::BlockOutOfRange {
                id,
                num_blocks: self.num_blocks,
            })
        }
    }

    /// Global slot index (`block · block_size + slot`) of position `pos`.
    pub fn slot_index(&self, block_table: &[u32], pos: usize) -> Result<usize> {
        let bs = self.layout.block_size;
        let index = pos / bs;
        let id = *block_table.get(index).ok_or(Error::MissingBlock {
            pos,
            index,
            len: block_table.len(),
        })?;
        self.check_block(id)?;
        Ok(id as usize * bs + pos % bs)
    }

    /// Stores one token's K and V (`n_kv_heads · head_dim` values each) at position `pos`.
    pub fn write(&mut self, block_table: &[u32], pos: usize, k: &[f32], v: &[f32]) -> Result<()> {
        let row = self.layout.row_len();
        if k.len() != row || v.len() != row {
            return Err(shape(format!(
                "write: k/v have {}/{} values, a token needs {row}",
                k.len(),
                v.len()
            )));
        }
        let at = self.slot_index(block_table, pos)? * row;
        match &mut self.storage {
            KvStorage::F16(s) => {
                s.k[at..at + row].convert_from_f32_slice(k);
                s.v[at..at + row].convert_from_f32_slice(v);
            }
            KvStorage::Quant(s) => s.write(at / self.layout.head_dim, k, v),
        }
        Ok(())
    }

    /// Stores `n` consecutive tokens' K and V (`n × n_kv_heads × head_dim` each) at positions
    /// `start_pos..start_pos + n`. Every block is checked before anything is written.
    pub fn write_tokens(
        &mut self,
        block_table: &[u32],
        start_pos: usize,
        k: &[f32],
        v: &[f32],
    ) -> Result<()> {
        let row = self.layout.row_len();
        if !k.len().is_multiple_of(row) || k.len() != v.len() {
            return Err(shape(format!(
                "write_tokens: k/v have {}/{} values, not a whole number of {row}-value tokens",
                k.len(),
                v.len()
            )));
        }
        let n = k.len() / row;
        if n > 0 {
            let last = start_pos
                .checked_add(n - 1)
                .ok_or_else(|| shape(format!("write_tokens: start {start_pos} overflows")))?;
            for pos in (start_pos..=last).step_by(self.layout.block_size) {
                self.slot_index(block_table, pos)?;
            }
            self.slot_index(block_table, last)?;
            for (i, (kt, vt)) in k.chunks_exact(row).zip(v.chunks_exact(row)).enumerate() {
                self.write(block_table, start_pos + i, kt, vt)?;
            }
        }
        Ok(())
    }

    /// The F16 K row (`n_kv_heads · head_dim` values) of position `pos` (an error for
    /// quantized storage; use [`PagedKv::read`]).
    pub fn key(&self, block_table: &[u32], pos: usize) -> Result<&[f16]> {
        let (at, row) = (
            self.slot_index(block_table, pos)? * self.layout.row_len(),
            self.layout.row_len(),
        );
        match &self.storage {
            KvStorage::F16(s) => Ok(&s.k[at..at + row]),
            KvStorage::Quant(_) => Err(not_f16()),
        }
    }

    /// The F16 V row (`n_kv_heads · head_dim` values) of position `pos` (an error for
    /// quantized storage; use [`PagedKv::read`]).
    pub fn value(&self, block_table: &[u32], pos: usize) -> Result<&[f16]> {
        let (at, row) = (
            self.slot_index(block_table, pos)? * self.layout.row_len(),
            self.layout.row_len(),
        );
        match &self.storage {
            KvStorage::F16(s) => Ok(&s.v[at..at + row]),
            KvStorage::Quant(_) => Err(not_f16()),
        }
    }

    /// K and V of position `pos` decoded to f32 (`n_kv_heads · head_dim` values each), for any
    /// storage type.
    pub fn read(
        &self,
        block_table: &[u32],
        pos: usize,
        k: &mut [f32],
        v: &mut [f32],
    ) -> Result<()> {
        let row = self.layout.row_len();
        if k.len() != row || v.len() != row {
            return Err(shape(format!("read: k/v buffers must hold {row} values")));
        }
        let first = self.slot_index(block_table, pos)? * self.layout.n_kv_heads;
        let hd = self.layout.head_dim;
        let rows = self.storage.rows();
        for (h, (kh, vh)) in k
            .chunks_exact_mut(hd)
            .zip(v.chunks_exact_mut(hd))
            .enumerate()
        {
            rows.k_row(first + h, kh);
            rows.v_row(first + h, vh);
        }
        Ok(())
    }

    /// Copies block `src` over block `dst` (copy-on-write of a shared block).
    pub fn copy_block(&mut self, src: u32, dst: u32) -> Result<()> {
        self.check_block(src)?;
        self.check_block(dst)?;
        let n = self.layout.block_size * self.layout.row_len();
        let (s, d) = (src as usize * n, dst as usize * n);
        match &mut self.storage {
            KvStorage::F16(st) => {
                st.k.copy_within(s..s + n, d);
                st.v.copy_within(s..s + n, d);
            }
            KvStorage::Quant(st) => {
                let hd = self.layout.head_dim;
                st.copy_rows(s / hd, d / hd, n / hd);
            }
        }
        Ok(())
    }
}

fn not_f16() -> Error {
    Error::Unsupported {
        op: "paged_kv f16 row view",
        format: "quantized KV",
    }
}

fn shape(msg: String) -> Error {
    Error::Shape {
        op: "paged_kv",
        msg,
    }
}
