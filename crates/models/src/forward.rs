//! The CPU forward pass of a decoder-only transformer over a batch of sequences, reading and
//! writing the paged KV cache through each sequence's block table.

use marlin_cpu::{attention, matmul, ops};

use crate::config::Activation;
use crate::kv_cache::KvCache;
use crate::model::Model;
use crate::weights::Linear;
use crate::{Error, Result};

/// Which logits a sequence wants back from a forward step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsRequest {
    /// None (a prefill chunk that is not the last).
    None,
    /// Only the last token's (generation).
    Last,
    /// Every token's (perplexity, logit dumps).
    All,
}

/// One sequence's share of a forward step: `tokens` at positions `start_pos..`, whose KV
/// slots live in the blocks of `block_table` (already reserved for every position).
#[derive(Debug, Clone, Copy)]
pub struct SeqInput<'a> {
    pub tokens: &'a [u32],
    pub start_pos: usize,
    pub block_table: &'a [u32],
    pub logits: LogitsRequest,
}

/// Logits of a step: `rows` rows of `vocab` values, sequences in input order.
#[derive(Debug, Clone, Default)]
pub struct Logits {
    pub data: Vec<f32>,
    pub vocab: usize,
    /// How many rows each sequence contributed.
    pub rows_per_seq: Vec<usize>,
}

impl Logits {
    /// Row `i` of the logits.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.vocab..(i + 1) * self.vocab]
    }

    /// Total rows.
    pub fn rows(&self) -> usize {
        self.data.len() / self.vocab.max(1)
    }
}

/// Scratch activations for `n` tokens.
struct Scratch {
    h: Vec<f32>,
    xn: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    tmp: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
}

/// The input of which block linears a calibration hook sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptureSite {
    /// Normed hidden state entering q/k/v.
    AttnIn,
    /// Attention output entering o.
    AttnOut,
    /// Normed hidden state entering gate/up.
    MlpIn,
    /// Activated product entering down.
    MlpDown,
}

/// A calibration hook: `(layer, site, x [n_tokens × width], n_tokens)`.
pub type CaptureHook = Box<dyn FnMut(usize, CaptureSite, &[f32], usize)>;

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<CaptureHook>> = const { std::cell::RefCell::new(None) };
}

/// Run `body` with `hook` called on the inputs of every block linear during CPU forwards
/// on this thread (quantizer calibration); returns `body`'s result and the hook.
pub fn with_capture<R>(hook: CaptureHook, body: impl FnOnce() -> R) -> (R, Option<CaptureHook>) {
    CAPTURE.with(|c| *c.borrow_mut() = Some(hook));
    let r = body();
    (r, CAPTURE.with(|c| c.borrow_mut().take()))
}

fn capture(l: usize, site: CaptureSite, x: &[f32], n: usize) {
    CAPTURE.with(|c| {
        if let Ok(mut h) = c.try_borrow_mut() {
            if let Some(h) = h.as_mut() {
                h(l, site, x, n);
            }
        }
    });
}

fn linear(l: &Linear, x: &[f32], n: usize, out: &mut [f32]) -> Result<()> {
    matmul::matmul(&l.weight, x, n, out)?;
    if let Some(b) = &l.bias {
        for row in out.chunks_exact_mut(b.len()) {
            ops::add_inplace(row, b);
        }
    }
    Ok(())
}

impl Model {
    /// Run one step over `seqs`, appending their K/V to `kv`, and return the requested logits.
    pub fn forward(&self, seqs: &[SeqInput<'_>], kv: &mut KvCache) -> Result<Logits> {
        let cfg = &self.config;
        let (d, qd, kvd) = (cfg.hidden, cfg.q_dim(), cfg.kv_dim());
        let n: usize = seqs.iter().map(|s| s.tokens.len()).sum();
        if n > 0 && !self.weights.blocks.is_empty() {
            return self.forward_blocks(seqs, kv);
        }
        if n == 0 {
            return Ok(Logits {
                vocab: cfg.vocab,
                rows_per_seq: vec![0; seqs.len()],
                ..Default::default()
            });
        }
        let mut positions = Vec::with_capacity(n);
        for s in seqs {
            positions.extend(s.start_pos..s.start_pos + s.tokens.len());
        }
        if let Some(&p) = positions.iter().max() {
            if p >= cfg.context_length {
                return Err(Error::Config(format!(
                    "position {p} is past the context length {}",
                    cfg.context_length
                )));
            }
        }
        let mut s = Scratch {
            h: vec![0.0; n * d],
            xn: vec![0.0; n * d],
            q: vec![0.0; n * qd],
            k: vec![0.0; n * kvd],
            v: vec![0.0; n * kvd],
            att: vec![0.0; n * qd],
            tmp: vec![0.0; n * d],
            gate: vec![0.0; n * cfg.ffn],
            up: vec![0.0; n * cfg.ffn],
        };
        self.embed(seqs, &mut s.h)?;
        for l in 0..cfg.n_layers {
            self.attention_block(l, seqs, &positions, kv, &mut s)?;
            self.mlp_block(l, n, &mut s)?;
        }
        self.logits(seqs, &s.h)
    }

    pub(crate) fn embed(&self, seqs: &[SeqInput<'_>], h: &mut [f32]) -> Result<()> {
        let d = self.config.hidden;
        let tokens = seqs.iter().flat_map(|s| s.tokens.iter());
        for (row, &tok) in h.chunks_exact_mut(d).zip(tokens) {
            if tok as usize >= self.config.vocab {
                return Err(Error::Config(format!(
                    "token id {tok} is outside the vocabulary ({})",
                    self.config.vocab
                )));
            }
            self.weights.embed.dequantize_row(tok as usize, row)?;
            if self.config.embed_scale != 1.0 {
                row.iter_mut().for_each(|x| *x *= self.config.embed_scale);
            }
        }
        Ok(())
    }

    fn attention_block(
        &self,
        l: usize,
        seqs: &[SeqInput<'_>],
        positions: &[usize],
        kv: &mut KvCache,
        s: &mut Scratch,
    ) -> Result<()> {
        let cfg = &self.config;
        let lw = &self.weights.layers[l];
        let n = positions.len();
        let (qd, kvd, hd) = (cfg.q_dim(), cfg.kv_dim(), cfg.head_dim);
        ops::rms_norm(&s.h, &lw.attn_norm, cfg.rms_eps, &mut s.xn);
        capture(l, CaptureSite::AttnIn, &s.xn, n);
        linear(&lw.q, &s.xn, n, &mut s.q)?;
        linear(&lw.k, &s.xn, n, &mut s.k)?;
        linear(&lw.v, &s.xn, n, &mut s.v)?;
        if let (Some(qn), Some(kn)) = (&lw.q_norm, &lw.k_norm) {
            ops::rms_norm_inplace(&mut s.q, qn, cfg.rms_eps);
            ops::rms_norm_inplace(&mut s.k, kn, cfg.rms_eps);
        }
        let local = cfg.local_layers[l];
        let rope = if local {
            self.rope_local.as_ref().unwrap_or(&self.rope)
        } else {
            &self.rope
        };
        rope.apply(&mut s.q, positions, cfg.n_heads, hd);
        rope.apply(&mut s.k, positions, cfg.n_kv_heads, hd);
        let window = if local { cfg.sliding_window } else { None };
        let layer_kv = kv.layer_mut(l)?;
        let mut off = 0;
        for seq in seqs {
            let len = seq.tokens.len();
            for i in 0..len {
                let t = off + i;
                layer_kv.write(
                    seq.block_table,
                    positions[t],
                    &s.k[t * kvd..(t + 1) * kvd],
                    &s.v[t * kvd..(t + 1) * kvd],
                )?;
            }
            attention::attention(
                &s.q[off * qd..(off + len) * qd],
                &positions[off..off + len],
                layer_kv,
                seq.block_table,
                cfg.n_heads,
                cfg.attn_scale,
                window,
                &mut s.att[off * qd..(off + len) * qd],
            )?;
            off += len;
        }
        capture(l, CaptureSite::AttnOut, &s.att, n);
        linear(&lw.o, &s.att, n, &mut s.tmp)?;
        if let Some(w) = &lw.post_attn_norm {
            ops::rms_norm_inplace(&mut s.tmp, w, cfg.rms_eps);
        }
        ops::add_inplace(&mut s.h, &s.tmp);
        Ok(())
    }

    fn mlp_block(&self, l: usize, n: usize, s: &mut Scratch) -> Result<()> {
        let cfg = &self.config;
        let lw = &self.weights.layers[l];
        ops::rms_norm(&s.h, &lw.ffn_norm, cfg.rms_eps, &mut s.xn);
        capture(l, CaptureSite::MlpIn, &s.xn, n);
        linear(&lw.gate, &s.xn, n, &mut s.gate)?;
        linear(&lw.up, &s.xn, n, &mut s.up)?;
        match cfg.activation {
            Activation::Silu => ops::silu_mul(&mut s.gate, &s.up),
            Activation::GeluTanh => ops::gelu_tanh_mul(&mut s.gate, &s.up),
        }
        capture(l, CaptureSite::MlpDown, &s.gate, n);
        linear(&lw.down, &s.gate, n, &mut s.tmp)?;
        if let Some(w) = &lw.post_ffn_norm {
            ops::rms_norm_inplace(&mut s.tmp, w, cfg.rms_eps);
        }
        ops::add_inplace(&mut s.h, &s.tmp);
        Ok(())
    }

    pub(crate) fn logits(&self, seqs: &[SeqInput<'_>], h: &[f32]) -> Result<Logits> {
        let cfg = &self.config;
        let d = cfg.hidden;
        let mut rows = Vec::new();
        let mut rows_per_seq = Vec::with_capacity(seqs.len());
        let mut off = 0;
        for seq in seqs {
            let len = seq.tokens.len();
            let picked = match seq.logits {
                LogitsRequest::None => 0..0,
                LogitsRequest::Last => off + len - 1..off + len,
                LogitsRequest::All => off..off + len,
            };
            rows_per_seq.push(picked.len());
            for t in picked {
                rows.extend_from_slice(&h[t * d..(t + 1) * d]);
            }
            off += len;
        }
        let m = rows.len() / d;
        let mut normed = vec![0.0; rows.len()];
        ops::rms_norm(&rows, &self.weights.output_norm, cfg.rms_eps, &mut normed);
        let mut data = vec![0.0; m * cfg.vocab];
        if m > 0 {
            matmul::matmul(&self.weights.lm_head, &normed, m, &mut data)?;
        }
        Ok(Logits {
            data,
            vocab: cfg.vocab,
            rows_per_seq,
        })
    }
}
