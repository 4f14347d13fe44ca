//! Proxy-loss experiments on real SmolLM2 weights and Hessians (ignored; needs a dump in
//! `Q_DATA`: `<name>.w` f32 `[n, k]`; `<name>.{cal,val,eval}.h` f64 `[k, k]` Hessians of the
//! calibration text, a held-out text and the perplexity text). Prints the relative proxy
//! loss `tr(ΔW·H·ΔWᵀ)/tr(W·H·Wᵀ)` averaged over the matrices, per option set
//! (`Q_VARIANTS=label:b=1:d=0.2:r=0.95:cb=mul1:h=0,...`, `Q_BITS`, `Q_NAMES`; `Q_CAL=TAG`
//! quantizes against `<name>.TAG.h` instead of `.cal.h`).
//!
//! Measured (release, layers 3.q 15.o 15.down 29.up 0.v; relative loss cal / val / eval):
//! K=3 old defaults (no balance, damp 0.01, RMS 1.0) 0.00333 / – / 0.01034; + balance
//! 0.00283 / 0.00678 / 0.00919; + damp 0.1 0.00304 / 0.00616 / 0.00787; damp 0.3 0.00346 /
//! 0.00616 / 0.00756; + RMS 0.95 0.00337 / 0.00603 / 0.00750 (RMS 0.9: no better); MUL1 on
//! top 0.00315 / 0.00592 / 0.00744. No Hessian: 0.0191 / – / 0.0197, balanced 0.0138 / – /
//! 0.0137. Worse held out: half-strength balancing (eval 0.00775), columns weighted by the
//! Hessian diagonal^−¼ (cal 0.00308 but eval 0.00827). K=4: old 0.00093 / 0.00213 / 0.00290,
//! new defaults 0.00084 / 0.00159 / 0.00199, MUL1 0.00081 / 0.00152 / 0.00192. down_proj
//! alone (k = 1536 for 4096 tokens) wants more damping: val 0.00850 / 0.00814 / 0.00805
//! for damp 0.2 / 0.5 / 1.0.
//!
//! Calibration text (K=4, damp 0.1 unless noted; the cal column is each set's own Hessian,
//! so compare val / eval). GPL-3 16×256 (damp 0.2): 0.00084 / 0.00159 / 0.00199. Debian's
//! 14 distinct licences, 128×256: 0.00092 / 0.00146 / 0.00191 (damp 0.05–0.2 flat). Text
//! sampled from the model (`calib_gen.py`), 128×256, no top-k: 0.00104 / 0.00160 / 0.00161
//! (flat in damping); top-k 50: 0.00107 / 0.00167 / 0.00158. Both interleaved (`mix`, what
//! scripts/quality-table.sh builds), 256×256: 0.00111 / 0.00148 / 0.00160 (with the no-top-k
//! samples: damp 0.02 / 0.1 / 0.2 eval 0.00164 / 0.00163 / 0.00165, RMS 0.9 / 1.0 eval
//! 0.00162 / 0.00170). K=3 mix 256×256: 0.00423 / 0.00561 / 0.00612 (damp 0.03 no better),
//! against 0.00603 / 0.00750 on GPL-3 16×256. Mix, K=4, no better: 128×512 windows 0.00109 /
//! 0.00146 / 0.00160; 2 balancing rounds 0.00111 / 0.00147 / 0.00161 (none: 0.00189 eval).

use marlin_core::formats::trellis::dequantize;
use marlin_core::{Codebook, TrellisFormat};
use rayon::prelude::*;

use super::*;

fn read<T: Copy>(path: &str, f: fn([u8; 8]) -> T, width: usize) -> Vec<T> {
    let b = std::fs::read(path).unwrap();
    b.chunks_exact(width)
        .map(|c| {
            let mut a = [0u8; 8];
            a[..width].copy_from_slice(c);
            f(a)
        })
        .collect()
}

/// `tr(Δ·H·Δᵀ) / tr(W·H·Wᵀ)`.
fn rel_proxy(w: &[f32], d: &[f32], k: usize, h: &[f64]) -> f64 {
    let q = |x: &[f64]| -> f64 {
        (0..k)
            .map(|i| x[i] * (0..k).map(|j| h[i * k + j] * x[j]).sum::<f64>())
            .sum()
    };
    let (num, den) = w
        .par_chunks_exact(k)
        .zip(d.par_chunks_exact(k))
        .map(|(a, b)| {
            let e: Vec<f64> = a.iter().zip(b).map(|(p, q)| f64::from(p - q)).collect();
            let x: Vec<f64> = a.iter().map(|&p| f64::from(p)).collect();
            (q(&e), q(&x))
        })
        .reduce(|| (0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
    num / den
}

#[test]
#[ignore]
fn real_weights_proxy_loss() {
    let dir = std::env::var("Q_DATA").unwrap_or_else(|_| "/work/q-data".into());
    let names = std::env::var("Q_NAMES").unwrap_or_else(|_| "3.q,15.o,15.down,29.up,0.v".into());
    let variants = std::env::var("Q_VARIANTS").unwrap_or_else(|_| "base".into());
    let cal = std::env::var("Q_CAL").unwrap_or_else(|_| "cal".into());
    let bits: u32 = std::env::var("Q_BITS")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(3);
    for v in variants.split(',') {
        // name[:key=value]... e.g. bal:b=4:a=1:r=1.05:d=0.01:cb=mul1
        let mut o = TrellisOptions::default();
        let mut cb = Codebook::DEFAULT;
        let mut use_h = true;
        for kv in v.split(':').skip(1) {
            let (key, val) = kv.split_once('=').unwrap();
            match key {
                "b" => o.balance = val.parse().unwrap(),
                "r" => o.rms_ratio = val.parse().unwrap(),
                "d" => o.damp = val.parse().unwrap(),
                "h" => use_h = val == "1",
                "cb" => cb = Codebook::from_name(val).unwrap(),
                _ => panic!("{key}"),
            }
        }
        let f = TrellisFormat::new(bits, cb).unwrap();
        let (mut sc, mut se, mut sv) = (0.0, 0.0, 0.0);
        let mut line = String::new();
        let names: Vec<&str> = names.split(',').collect();
        for name in &names {
            let w: Vec<f32> = read(
                &format!("{dir}/{name}.w"),
                |a| f32::from_le_bytes([a[0], a[1], a[2], a[3]]),
                4,
            );
            let hc: Vec<f64> = read(&format!("{dir}/{name}.{cal}.h"), f64::from_le_bytes, 8);
            let he: Vec<f64> = read(&format!("{dir}/{name}.eval.h"), f64::from_le_bytes, 8);
            let hv: Vec<f64> = read(&format!("{dir}/{name}.val.h"), f64::from_le_bytes, 8);
            let k = (hc.len() as f64).sqrt() as usize;
            let n = w.len() / k;
            let b = quantize_matrix(f, &w, n, k, use_h.then_some(&hc[..]), o, &|_| {}).unwrap();
            let d = dequantize(f, &b, n, k).unwrap();
            let (c, e) = (rel_proxy(&w, &d, k, &hc), rel_proxy(&w, &d, k, &he));
            sv += rel_proxy(&w, &d, k, &hv);
            sc += c;
            se += e;
            line += &format!(" {name} {c:.5}/{e:.5}");
        }
        let m = names.len() as f64;
        eprintln!(
            "K={bits} {v:<28} cal {:.5} val {:.5} eval {:.5} |{line}",
            sc / m,
            sv / m,
            se / m
        );
    }
}
