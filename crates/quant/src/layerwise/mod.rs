//! Sequential, layer-by-layer calibration (the GPTQ paper's order): the calibration windows'
//! hidden states are kept (`windows × seq_len × hidden`); for each decoder layer in turn the
//! layer runs on them capturing every linear's input, only that layer's Hessians are
//! accumulated, its linears are quantized, and the hidden states are propagated through the
//! *quantized* layer before the Hessians are dropped. MoE experts get Hessians from exactly
//! the tokens routed to them; an expert no token reached falls back to RTN.

mod attention;
pub mod forward;
mod moe;

use std::collections::BTreeMap;

use marlin_core::QTensor;
use marlin_models::model::Model;
use serde_json::{json, Value};

pub use forward::{LayerRunner, Mats, Site};

use crate::calib::Acc;
use crate::export::{Entry, Proj, Role, Source};
use crate::{Error, Result};

/// The calibration text, cut into windows.
#[derive(Debug, Clone)]
pub struct CalibrationText {
    pub tokens: Vec<u32>,
    /// Written over the first token of every window when given.
    pub bos: Option<u32>,
    /// Most windows to use.
    pub samples: usize,
    pub seq_len: usize,
    /// Where the text came from (for the summary).
    pub source: String,
}

/// The Hessian site of a linear with `role` (`None`: not a calibrated linear).
pub fn site_of(role: Role) -> Option<Site> {
    Some(match role {
        Role::Q | Role::K | Role::V | Role::QA | Role::KvA => Site::AttnIn,
        Role::O => Site::AttnOut,
        Role::QB => Site::QbIn,
        Role::KvB => Site::KvbIn,
        Role::Gate | Role::Up | Role::Shared(Proj::Gate | Proj::Up) => Site::MlpIn,
        Role::Down => Site::MlpDown,
        Role::Shared(Proj::Down) => Site::SharedDown,
        Role::Expert(e, Proj::Gate | Proj::Up) => Site::ExpertIn(e),
        Role::Expert(e, Proj::Down) => Site::ExpertDown(e),
        Role::Embed | Role::LmHead | Role::Router | Role::Vector => return None,
    })
}

/// Layer-by-layer calibration state; see the module docs.
pub struct Calibrator<'m> {
    runner: LayerRunner<'m>,
    h: Vec<f32>,
    seq_len: usize,
    windows: usize,
    source: String,
    /// Propagate through the unquantized layer instead (the old one-pass order; A/B tests).
    one_pass: bool,
    layer: Option<usize>,
    mats: Mats,
    acc: BTreeMap<Site, Acc>,
    /// The unquantized layer's output (one-pass order only).
    next_h: Option<Vec<f32>>,
    expert_tokens: BTreeMap<usize, Vec<usize>>,
    rtn_fallback: Vec<String>,
    peak_bytes: usize,
}

impl<'m> Calibrator<'m> {
    /// Embed up to `samples` windows of `seq_len` tokens of the text.
    pub fn new(model: &'m Model, text: &CalibrationText) -> Result<Self> {
        let seq_len = text.seq_len;
        let windows = (text.tokens.len() / seq_len.max(1)).min(text.samples);
        if windows == 0 || seq_len < 2 {
            return Err(Error::Invalid(format!(
                "calibration text has {} tokens: not one window of {seq_len}",
                text.tokens.len()
            )));
        }
        let cfg = &model.config;
        let d = cfg.hidden;
        let mut h = vec![0f32; windows * seq_len * d];
        for (i, row) in h.chunks_exact_mut(d).enumerate() {
            let tok = match text.bos {
                Some(b) if i % seq_len == 0 => b,
                _ => text.tokens[i],
            };
            if tok as usize >= cfg.vocab {
                return Err(Error::Invalid(format!(
                    "calibration token {tok} is outside the vocabulary ({})",
                    cfg.vocab
                )));
            }
            model.weights.embed.dequantize_row(tok as usize, row)?;
            row.iter_mut().for_each(|x| *x *= cfg.embed_scale);
        }
        Ok(Self {
            runner: LayerRunner::new(model)?,
            h,
            seq_len,
            windows,
            source: text.source.clone(),
            one_pass: false,
            layer: None,
            mats: Mats::default(),
            acc: BTreeMap::new(),
            next_h: None,
            expert_tokens: BTreeMap::new(),
            rtn_fallback: Vec::new(),
            peak_bytes: 0,
        })
    }

    /// Take every layer's inputs from the unquantized model (the previous one-pass order).
    pub fn one_pass(mut self, on: bool) -> Self {
        self.one_pass = on;
        self
    }

    /// The layer being quantized.
    pub fn layer(&self) -> Option<usize> {
        self.layer
    }

    /// The kept hidden states (`windows × seq_len × hidden`).
    pub fn hidden(&self) -> &[f32] {
        &self.h
    }

    /// Start layer `l`: collect its matrices from `entries` and accumulate its Hessians.
    pub fn begin_layer(&mut self, l: usize, entries: &[Entry<'_>]) -> Result<()> {
        if self.layer.is_some() {
            self.end_layer()?;
        }
        let prefix = format!("model.layers.{l}.");
        let mut mats = Mats::default();
        for e in entries.iter().filter(|e| e.layer == Some(l)) {
            let Some(key) = e.name.strip_prefix(&prefix) else {
                continue;
            };
            match &e.src {
                Source::Vector(v) if key.ends_with(".bias") => {
                    mats.biases.insert(key.to_string(), v.clone());
                }
                Source::Vector(_) => {}
                Source::Matrix {
                    tensor,
                    unpermute: None,
                } => {
                    mats.weights.insert(key.to_string(), (*tensor).clone());
                }
                _ => {
                    let t = QTensor::from_f32(e.shape(), &e.values()?)?;
                    mats.weights.insert(key.to_string(), t);
                }
            }
        }
        self.mats = mats;
        self.layer = Some(l);
        let mut tmp = self.h.clone();
        let (acc, peak) = (&mut self.acc, &mut self.peak_bytes);
        let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
        let mut hook = |site: Site, x: &[f32], rows: usize| -> Result<()> {
            if let Site::ExpertIn(e) = site {
                *counts.entry(e).or_default() += rows;
            }
            if rows == 0 {
                return Ok(());
            }
            let a = acc.entry(site).or_insert_with(|| Acc::new(x.len() / rows));
            a.add(x)?;
            *peak = (*peak).max(acc.values().map(Acc::bytes).sum());
            Ok(())
        };
        self.runner
            .run(l, &self.mats, &mut tmp, self.seq_len, &mut hook)?;
        if !counts.is_empty() {
            let n_e = counts.keys().max().map_or(0, |m| m + 1);
            let v = (0..n_e).map(|e| counts.get(&e).copied().unwrap_or(0));
            self.expert_tokens.insert(l, v.collect());
        }
        if self.one_pass {
            self.next_h = Some(tmp);
        }
        Ok(())
    }

    /// `H` of the linear `role` of the current layer (`None`: no rows reached it).
    pub fn hessian(&self, role: Role) -> Option<Vec<f64>> {
        self.acc.get(&site_of(role)?)?.hessian()
    }

    /// Rows that reached the linear `role` of the current layer.
    pub fn rows(&self, role: Role) -> usize {
        site_of(role)
            .and_then(|s| self.acc.get(&s))
            .map_or(0, Acc::rows)
    }

    /// Note that tensor `name` was quantized with RTN for want of calibration rows.
    pub fn note_rtn_fallback(&mut self, name: &str) {
        self.rtn_fallback.push(name.to_string());
    }

    /// Use the quantized `t` for tensor `name` of the current layer from now on.
    pub fn replace(&mut self, name: &str, t: QTensor) {
        if let Some(l) = self.layer {
            if let Some(key) = name.strip_prefix(&format!("model.layers.{l}.")) {
                self.mats.weights.insert(key.to_string(), t);
            }
        }
    }

    /// Finish the current layer: drop its Hessians and move the hidden states through the
    /// quantized layer (or the unquantized one, in one-pass order).
    pub fn end_layer(&mut self) -> Result<()> {
        let Some(l) = self.layer.take() else {
            return Ok(());
        };
        self.acc.clear();
        match self.next_h.take() {
            Some(h) => self.h = h,
            None => {
                let mut none = |_: Site, _: &[f32], _: usize| Ok(());
                self.runner
                    .run(l, &self.mats, &mut self.h, self.seq_len, &mut none)?;
            }
        }
        self.mats = Mats::default();
        Ok(())
    }

    /// Largest number of Hessian bytes held at once.
    pub fn peak_hessian_bytes(&self) -> usize {
        self.peak_bytes
    }

    /// The calibration summary for `quantization_config.json`.
    pub fn summary(&self) -> Value {
        let experts: BTreeMap<String, &Vec<usize>> = self
            .expert_tokens
            .iter()
            .map(|(l, v)| (l.to_string(), v))
            .collect();
        json!({
            "source": self.source,
            "samples": self.windows,
            "seq_len": self.seq_len,
            "tokens": self.windows * self.seq_len,
            "order": if self.one_pass { "one-pass" } else { "sequential" },
            "peak_hessian_bytes": self.peak_bytes,
            "expert_tokens": experts,
            "rtn_fallback": self.rtn_fallback,
        })
    }
}
