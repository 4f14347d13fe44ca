//! The host side of a GPU forward step: token ids, KV slots, per-token attention metadata
//! and block tables packed into one u32 upload, RoPE cos/sin rows, and the logits rows each
//! sequence asked for; bad input (token ids, positions, block ids) is rejected here.

use std::ops::Range;

use marlin_core::rope::RopeConfig;

use super::{GpuKvCache, GpuModel};
use crate::forward::{LogitsRequest, SeqInput};
use crate::kv_cache::BLOCK_SIZE;
use crate::{Error, Result};

/// The host side of a step: u32 words `[ids | slots | (pos, table offset) per token |
/// block tables]`, RoPE rows, and which token rows each sequence wants logits for.
pub(super) struct StepInputs {
    pub(super) n: usize,
    pub(super) words: Vec<u32>,
    pub(super) slots_off: usize,
    pub(super) meta_off: usize,
    pub(super) cs: Vec<f32>,
    pub(super) cs_local_off: usize,
    pub(super) picks: Vec<Range<usize>>,
    /// Keys the longest query attends to without a window (its position + 1).
    pub(super) max_keys: usize,
    /// Word index in `words` of the prefill attention's query blocks, and their count.
    pub(super) blocks_off: usize,
    pub(super) n_blocks: usize,
    /// Whether some sequence brings more than one token (a prompt chunk).
    pub(super) prompt: bool,
    /// Tokens of the sequences that bring more than one.
    pub(super) prompt_tokens: usize,
    /// Whether every token of the step belongs to one sequence.
    pub(super) one_seq: bool,
    /// Word index in `words` of the RoPE records `gemv_norm_rope_kv` reads (global, local
    /// rope): `[q dim, kv dim, head dim, rotated pairs, cs word of token 0, slot word]`.
    pub(super) rope_rec: [usize; 2],
    /// Word index in `words` of `attn_flash`'s query blocks (64 tokens), and their count.
    pub(super) flash_blocks_off: usize,
    pub(super) n_flash_blocks: usize,
    /// Word index (a multiple of 4) of the logits rows in pick order, present when they
    /// make more than one run: the step gathers them into contiguous rows so the LM head
    /// runs once (a prompt step's sequences each want only their last row).
    pub(super) gather_off: Option<usize>,
}

impl StepInputs {
    /// Logits rows the sequences asked for.
    pub(super) fn picked_rows(&self) -> usize {
        self.picks.iter().map(|r| r.len()).sum()
    }

    /// The logits rows as runs of adjacent token rows, in pick order: a decode step's
    /// sequences (one row each, consecutive) make one run, so the LM head runs once for
    /// all of them instead of once per sequence.
    pub(super) fn pick_runs(&self) -> Vec<Range<usize>> {
        let mut runs: Vec<Range<usize>> = Vec::new();
        for r in self.picks.iter().filter(|r| !r.is_empty()) {
            match runs.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => runs.push(r.clone()),
            }
        }
        runs
    }
}

/// `cos ‖ sin` of every position's half angles, as the CPU table computes them (f64).
fn push_cs(cfg: &RopeConfig, positions: &[usize], out: &mut Vec<f32>) {
    let f = cfg.inv_freqs();
    for &p in positions {
        let angles = f.iter().map(|&fr| p as f64 * f64::from(fr));
        out.extend(angles.clone().map(|a| a.cos() as f32));
        out.extend(angles.map(|a| a.sin() as f32));
    }
}

impl GpuModel {
    /// Validate `seqs` against the model and `kv` and build the step's host inputs.
    pub(super) fn prepare(&self, seqs: &[SeqInput<'_>], kv: &GpuKvCache) -> Result<StepInputs> {
        let cfg = &self.config;
        let n: usize = seqs.iter().map(|s| s.tokens.len()).sum();
        let layers = if cfg.mla.is_some() {
            kv.latent.len()
        } else {
            kv.k.len()
        };
        if layers != cfg.n_layers {
            return Err(Error::Config(
                "GPU KV cache belongs to another model".into(),
            ));
        }
        let slots_off = n.div_ceil(4) * 4;
        let meta_off = slots_off + n;
        let mut words = vec![0u32; meta_off + 2 * n];
        let mut positions = Vec::with_capacity(n);
        let mut picks = Vec::with_capacity(seqs.len());
        let mut t = 0;
        for s in seqs {
            let table_off = words.len();
            words.extend_from_slice(s.block_table);
            for &id in s.block_table {
                if id as usize >= kv.num_blocks {
                    return Err(Error::Config(format!(
                        "KV block {id} is outside the GPU cache ({} blocks)",
                        kv.num_blocks
                    )));
                }
            }
            let len = s.tokens.len();
            for (i, &tok) in s.tokens.iter().enumerate() {
                let pos = s.start_pos + i;
                if tok as usize >= cfg.vocab {
                    return Err(Error::Config(format!(
                        "token id {tok} is outside the vocabulary ({})",
                        cfg.vocab
                    )));
                }
                if pos >= cfg.context_length {
                    return Err(Error::Config(format!(
                        "position {pos} is past the context length {}",
                        cfg.context_length
                    )));
                }
                let block = *s.block_table.get(pos / BLOCK_SIZE).ok_or_else(|| {
                    Error::Config(format!("no KV block reserved for position {pos}"))
                })?;
                words[t] = tok;
                words[slots_off + t] = block * BLOCK_SIZE as u32 + (pos % BLOCK_SIZE) as u32;
                words[meta_off + 2 * t] = pos as u32;
                words[meta_off + 2 * t + 1] = table_off as u32;
                positions.push(pos);
                t += 1;
            }
            let start = t - len;
            picks.push(match s.logits {
                LogitsRequest::None => start..start,
                LogitsRequest::Last if len > 0 => t - 1..t,
                LogitsRequest::Last => start..start,
                LogitsRequest::All => start..t,
            });
        }
        if u32::try_from(words.len()).is_err() {
            return Err(Error::Config("step metadata exceeds u32 indexing".into()));
        }
        let mut cs = Vec::new();
        push_cs(&self.rope, &positions, &mut cs);
        let cs_local_off = cs.len();
        if let Some(r) = &self.rope_local {
            push_cs(r, &positions, &mut cs);
        }
        let max_keys = positions.iter().max().map_or(0, |p| p + 1);
        let lens: Vec<usize> = seqs.iter().map(|s| s.tokens.len()).collect();
        let blocks = marlin_gpu::attn_prefill_blocks(&lens);
        let blocks_off = words.len();
        words.extend_from_slice(&blocks);
        let flash = marlin_gpu::query_blocks(&lens, marlin_gpu::ATTN_FLASH_BLOCK);
        let flash_blocks_off = words.len();
        words.extend_from_slice(&flash);
        let mut rope_rec = [0; 2];
        let ropes = [
            (&self.rope, 0),
            (self.rope_local.as_ref().unwrap_or(&self.rope), cs_local_off),
        ];
        for (rec, (r, cs_word)) in rope_rec.iter_mut().zip(ropes) {
            *rec = words.len();
            let dims = [
                cfg.q_dim(),
                cfg.kv_dim(),
                cfg.head_dim,
                r.n_rot / 2,
                cs_word,
                slots_off,
            ];
            words.extend(dims.map(|d| d as u32));
        }
        let mut inp = StepInputs {
            max_keys,
            blocks_off,
            n_blocks: blocks.len() / 2,
            prompt: lens.iter().any(|&l| l > 1),
            prompt_tokens: lens.iter().filter(|&&l| l > 1).sum(),
            one_seq: lens.iter().filter(|&&l| l > 0).count() == 1,
            rope_rec,
            flash_blocks_off,
            n_flash_blocks: flash.len() / 2,
            n,
            words,
            slots_off,
            meta_off,
            cs,
            cs_local_off,
            picks,
            gather_off: None,
        };
        if inp.pick_runs().len() > 1 {
            let rows: Vec<u32> = inp
                .picks
                .iter()
                .flat_map(|r| r.clone())
                .map(|t| t as u32)
                .collect();
            inp.words.resize(inp.words.len().next_multiple_of(4), 0);
            inp.gather_off = Some(inp.words.len());
            inp.words.extend_from_slice(&rows);
        }
        Ok(inp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_picks(picks: Vec<Range<usize>>) -> StepInputs {
        StepInputs {
            n: 0,
            words: Vec::new(),
            slots_off: 0,
            meta_off: 0,
            cs: Vec::new(),
            cs_local_off: 0,
            picks,
            max_keys: 0,
            blocks_off: 0,
            n_blocks: 0,
            prompt: false,
            prompt_tokens: 0,
            one_seq: false,
            rope_rec: [0; 2],
            flash_blocks_off: 0,
            n_flash_blocks: 0,
            gather_off: None,
        }
    }

    #[test]
    fn adjacent_picks_share_a_run_in_pick_order() {
        // A decode step: one row per sequence, consecutive.
        assert_eq!(with_picks(vec![0..1, 1..2, 2..3]).pick_runs(), vec![0..3]);
        // A prompt chunk's last row between decode rows, empty picks skipped.
        let runs = with_picks(vec![0..1, 5..6, 6..7, 7..7, 9..10]).pick_runs();
        assert_eq!(runs, vec![0..1, 5..7, 9..10]);
        // Output rows follow pick order: a later pick before an earlier row stays apart.
        assert_eq!(with_picks(vec![4..5, 0..1]).pick_runs(), vec![4..5, 0..1]);
        assert!(with_picks(Vec::new()).pick_runs().is_empty());
    }
}
