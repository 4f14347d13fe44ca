//! Calibration: run our own CPU forward over windows of a text and accumulate, for every
//! block and linear input site, the Hessian `H = (2/N)·Σ x·xᵀ` of the inputs (digest §5.1).
//! All sites are captured in one pass of the unquantized model (inputs are not re-computed
//! through already-quantized layers: one forward instead of one per layer). `XᵀX` runs on
//! the CPU f32 GEMM.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use marlin_core::QTensor;
use marlin_engine::Engine;
use marlin_models::forward::{with_capture, CaptureSite, LogitsRequest};
use marlin_models::model::Model;
use serde_json::json;

use crate::{Error, Result};

/// Σ x·xᵀ of one site (f32, `d × d`) and how many rows went in.
struct Acc {
    d: usize,
    sum: Vec<f32>,
    n: usize,
}

/// Sums captured so far, and the first error of the hook.
type Captured = (HashMap<(usize, CaptureSite), Acc>, Option<Error>);

/// Per-(layer, site) Hessians.
#[derive(Default)]
pub struct Hessians {
    map: HashMap<(usize, CaptureSite), Acc>,
    /// Calibration summary for `quantization_config.json`.
    pub summary: serde_json::Value,
}

impl Hessians {
    /// `H = 2/N · Σ x·xᵀ` of a site as f64 (`d × d`), if it was captured.
    pub fn get(&self, layer: usize, site: CaptureSite) -> Option<Vec<f64>> {
        let a = self.map.get(&(layer, site))?;
        let k = 2.0 / a.n.max(1) as f64;
        Some(a.sum.iter().map(|&v| f64::from(v) * k).collect())
    }

    /// Free a layer's Hessians once its linears are quantized.
    pub fn drop_layer(&mut self, layer: usize) {
        self.map.retain(|(l, _), _| *l != layer);
    }
}

/// `sum += XᵀX` for `x` = `n` rows of `d` values, through the f32 GEMM.
fn accumulate(acc: &mut Acc, x: &[f32], n: usize) -> Result<()> {
    let d = acc.d;
    let mut xt = vec![0f32; d * n];
    for (t, row) in x.chunks_exact(d).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            xt[i * n + t] = v;
        }
    }
    let w = QTensor::from_f32(vec![d, n], &xt)?;
    let mut out = vec![0f32; d * d];
    marlin_cpu::matmul::matmul(&w, &xt, d, &mut out)?;
    for (s, o) in acc.sum.iter_mut().zip(&out) {
        *s += o;
    }
    acc.n += n;
    Ok(())
}

/// Collect Hessians from `samples` windows of `seq_len` tokens of `tokens` (BOS first when
/// given); `progress(done, total)` after each window.
pub fn collect(
    model: &Arc<Model>,
    tokens: &[u32],
    bos: Option<u32>,
    samples: usize,
    seq_len: usize,
    source: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Hessians> {
    let windows = (tokens.len() / seq_len.max(1)).min(samples);
    if windows == 0 || seq_len < 2 {
        return Err(Error::Invalid(format!(
            "calibration text has {} tokens: not one window of {seq_len}",
            tokens.len()
        )));
    }
    let state: Rc<RefCell<Captured>> = Rc::new(RefCell::new((HashMap::new(), None)));
    let st = Rc::clone(&state);
    let hook = Box::new(move |l: usize, site: CaptureSite, x: &[f32], n: usize| {
        let mut s = st.borrow_mut();
        let d = x.len() / n.max(1);
        let acc = s.0.entry((l, site)).or_insert_with(|| Acc {
            d,
            sum: vec![0f32; d * d],
            n: 0,
        });
        if let Err(e) = accumulate(acc, x, n) {
            s.1.get_or_insert(e);
        }
    });
    let mut engine = Engine::new(Arc::clone(model), seq_len);
    let (res, _) = with_capture(hook, || -> Result<()> {
        for w in 0..windows {
            let mut win = tokens[w * seq_len..(w + 1) * seq_len].to_vec();
            if let Some(b) = bos {
                win[0] = b;
            }
            engine.prompt_logits(&win, LogitsRequest::Last)?;
            progress(w + 1, windows);
        }
        Ok(())
    });
    res?;
    let (map, err) = std::mem::take(&mut *state.borrow_mut());
    if let Some(e) = err {
        return Err(e);
    }
    Ok(Hessians {
        map,
        summary: json!({
            "source": source,
            "samples": windows,
            "seq_len": seq_len,
            "tokens": windows * seq_len,
        }),
    })
}
