//! How the trellis quantizer plugs into the planner and the checkpoint driver: CLI format
//! parsing (`--format trellis --bits K --codebook C`, or a full name), the fallback for
//! tensors whose shape cannot be tiled, and quantizing one tensor with a tile progress bar.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use marlin_core::formats::trellis::{dequantize, layout};
use marlin_core::{Codebook, Group, IntBits, IntFormat, QuantFormat, TrellisFormat};

use super::{quantize_matrix, TrellisOptions};
use crate::export::Role;
use crate::gptq::output_error;
use crate::plan::TensorChoice;
use crate::{Error, Result};

/// Parse a trellis `--format`: `trellis` (with `bits`, default 3), `trellisK`, or a full
/// name (`trellis3_mcg`); `codebook` (`inst3`/`3inst`, `mcg`, `mul1`) overrides the name's.
/// `Ok(None)` when `format` is not a trellis name.
pub fn parse_trellis(
    format: &str,
    bits: Option<u32>,
    codebook: Option<&str>,
) -> Result<Option<QuantFormat>> {
    let lower = format.to_ascii_lowercase();
    if !lower.starts_with("trellis") {
        return Ok(None);
    }
    let named = if lower == "trellis" {
        TrellisFormat::new(bits.unwrap_or(3), Codebook::DEFAULT)?
    } else {
        TrellisFormat::from_name(&lower).ok_or_else(|| {
            Error::Invalid(format!(
                "format `{format}` (trellis, trellis2|3|4, trellisK_3inst|mcg|mul1)"
            ))
        })?
    };
    if let Some(b) = bits.filter(|&b| b != named.k()) {
        return Err(Error::Invalid(format!(
            "--bits {b} contradicts --format {format}"
        )));
    }
    let codebook = match codebook {
        Some(c) => Codebook::from_name(c)
            .ok_or_else(|| Error::Invalid(format!("codebook `{c}` (inst3, mcg, mul1)")))?,
        None => named.codebook,
    };
    Ok(Some(QuantFormat::Trellis(TrellisFormat::new(
        named.k(),
        codebook,
    )?)))
}

/// The high-precision format a tensor falls back to when trellis cannot tile it
/// (`[rows, cols]` not multiples of 16): int8 g128 where it tiles the row, else F16.
fn fallback(cols: usize) -> Option<QuantFormat> {
    let int8 = QuantFormat::Int(IntFormat {
        bits: IntBits::B8,
        zeros: false,
        group: Group::G128,
    });
    int8.row_bytes(cols).is_ok().then_some(int8)
}

/// Adjust a planned choice for trellis: no extra rotation (the format has its own), and
/// the fallback (with a note for the summary) where the tensor cannot be trellis: a shape
/// that is not 16×16 tiles, or an embedding (looked up by row; trellis has no rows).
pub fn fit(choice: TensorChoice, role: Role, shape: &[usize]) -> (TensorChoice, Option<String>) {
    let Some(QuantFormat::Trellis(t)) = choice.target else {
        return (choice, None);
    };
    let (rows, cols) = match shape {
        [r, c] => (*r, *c),
        _ => (0, 0),
    };
    let why = if role == Role::Embed {
        "embeddings need row access".to_string()
    } else if layout(t, rows, cols).is_err() {
        format!("{shape:?} is not 16×16 tiles")
    } else {
        return (
            TensorChoice {
                hadamard: 0,
                ..choice
            },
            None,
        );
    };
    let target = fallback(cols);
    let name = target.map_or("f16", QuantFormat::name);
    let note = format!("{why}: {name} instead of {}", t.name());
    (
        TensorChoice {
            target,
            hadamard: 0,
            ..choice
        },
        Some(note),
    )
}

/// A per-tensor seed from the base seed and the tensor name (FNV-1a), so every matrix gets
/// its own signs and a re-run gives the same bytes.
pub fn tensor_seed(base: u64, name: &str) -> u64 {
    name.bytes().fold(base ^ 0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Quantize one `[rows, cols]` tensor: LDLQ with a Hessian, plain Viterbi without.
/// Returns the bytes, the relative error (output error with a Hessian, weight error
/// without) and the method name for the checkpoint (`ldlq` or `viterbi`).
pub fn quantize_tensor(
    format: TrellisFormat,
    name: &str,
    w: &[f32],
    rows: usize,
    cols: usize,
    hessian: Option<&[f64]>,
) -> Result<(Vec<u8>, f64, &'static str)> {
    let opts = TrellisOptions {
        seed: tensor_seed(TrellisOptions::default().seed, name),
        ..TrellisOptions::default()
    };
    let tiles = (rows / 16 * (cols / 16)) as u64;
    let bar = ProgressBar::with_draw_target(Some(tiles), ProgressDrawTarget::stderr_with_hz(4));
    if let Ok(style) = ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {pos}/{len} tiles {per_sec} eta {eta} {msg}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format.name());
    bar.set_message(name.to_string());
    let bytes = quantize_matrix(format, w, rows, cols, hessian, opts, &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    let deq = dequantize(format, &bytes, rows, cols)?;
    let err = match hessian {
        Some(h) => output_error(w, &deq, rows, cols, h),
        None => {
            let num: f64 = w
                .iter()
                .zip(&deq)
                .map(|(a, b)| f64::from(a - b).powi(2))
                .sum();
            let den: f64 = w.iter().map(|a| f64::from(*a).powi(2)).sum();
            num / den.max(f64::MIN_POSITIVE)
        }
    };
    Ok((
        bytes,
        err,
        if hessian.is_some() { "ldlq" } else { "viterbi" },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Method;

    #[test]
    fn parses_trellis_formats_and_falls_back_on_untileable_shapes() {
        let p = |f, b, c| {
            parse_trellis(f, b, c)
                .unwrap()
                .map(|q| q.name().to_string())
        };
        let d = Codebook::DEFAULT.name();
        assert_eq!(p("trellis", Some(2), None), Some("trellis2".into()));
        assert_eq!(p("trellis", None, Some("mcg")), Some("trellis3_mcg".into()));
        assert_eq!(p("TRELLIS4", None, None), Some("trellis4".into()));
        assert!(p("trellis3_mul1", Some(3), None).is_some());
        assert_eq!(p("trellis2", None, Some(d)), Some("trellis2".into()));
        assert_eq!(p("int4", Some(2), None), None);
        assert!(parse_trellis("trellis5", None, None).is_err());
        assert!(parse_trellis("trellis", Some(7), None).is_err());
        assert!(parse_trellis("trellis3", Some(2), None).is_err());
        assert!(parse_trellis("trellis", None, Some("hyb")).is_err());

        let t = parse_trellis("trellis3", None, None).unwrap();
        let c = TensorChoice {
            target: t,
            method: Method::Gptq,
            hadamard: 64,
        };
        let (ok, note) = fit(c, Role::Q, &[64, 576]);
        assert_eq!((ok.target, ok.hadamard, note), (t, 0, None));
        let (fb, note) = fit(c, Role::Down, &[49, 576]);
        assert_eq!(fb.target.map(QuantFormat::name), Some("int8_g128"));
        assert!(note.unwrap_or_default().contains("[49, 576]"));
        let (fb, _) = fit(c, Role::Up, &[64, 40]);
        assert_eq!(fb.target, None);
        let (fb, note) = fit(c, Role::Embed, &[320, 64]);
        assert_eq!(fb.target.map(QuantFormat::name), Some("int8_g128"));
        assert!(note.unwrap_or_default().contains("row access"));
        let (lm, _) = fit(c, Role::LmHead, &[320, 64]);
        assert_eq!(lm.target, t);
        assert_ne!(tensor_seed(1, "a.weight"), tensor_seed(1, "b.weight"));
    }
}
