//! Synthetic trellis models (`synthetic:PRESET:trellisK`): random tiles and signs, row
//! formats where rows are read, and a CPU forward that matches the same weights in f32.

use marlin_core::{QTensor, QuantFormat, TrellisFormat};
use marlin_models::kv_cache::KvCache;
use marlin_models::synthetic::{build_preset, format_for, row_format, Preset};
use marlin_models::{LogitsRequest, Model, SeqInput};

fn logits(m: &Model, tokens: &[u32]) -> Vec<f32> {
    let mut kv = KvCache::for_tokens(&m.config, tokens.len());
    let seq = SeqInput {
        tokens,
        start_pos: 0,
        block_table: &[0],
        logits: LogitsRequest::All,
    };
    m.forward(&[seq], &mut kv).unwrap().data
}

fn to_f32(t: &mut QTensor) {
    *t = QTensor::from_f32(t.shape.clone(), &t.to_f32().unwrap()).unwrap();
}

#[test]
fn smollm2_trellis_runs_like_its_f32_weights() {
    let p = Preset {
        n_layers: 2,
        ..*Preset::by_name("smollm2-135m").unwrap()
    };
    let format = QuantFormat::from_name("trellis2").unwrap();
    let mut m = build_preset(&p, format, &mut |_, _| {}).unwrap();
    assert_eq!(m.name, "synthetic:smollm2-135m:trellis2");
    let l0 = &m.weights.layers[0];
    assert_eq!(l0.q.weight.format, format);
    assert_eq!(l0.down.weight.shape, vec![576, 1536]);
    // Token embeddings are read by rows: Q8_0.
    assert_eq!(m.weights.embed.format, QuantFormat::Q8_0);
    let nb = |r, c| QTensor::nbytes_for(format, &[r, c]).unwrap();
    let layer = nb(576, 576) * 2 + nb(192, 576) * 2 + nb(1536, 576) * 2 + nb(576, 1536);
    let emb = 49152 * QuantFormat::Q8_0.row_bytes(576).unwrap();
    assert_eq!(m.weight_bytes(), 2 * layer + emb);

    let tokens = [1u32, 300, 4000, 49151];
    let got = logits(&m, &tokens);
    assert!(got.iter().all(|x| x.is_finite()));
    let spread = got.iter().fold(0f32, |a, &x| a.max(x.abs()));
    assert!(spread > 1e-3, "flat logits {spread}");
    for l in &mut m.weights.layers {
        for w in [
            &mut l.q,
            &mut l.k,
            &mut l.v,
            &mut l.o,
            &mut l.gate,
            &mut l.up,
            &mut l.down,
        ] {
            to_f32(&mut w.weight);
        }
    }
    let want = logits(&m, &tokens);
    let num: f64 = got
        .iter()
        .zip(&want)
        .map(|(a, b)| f64::from(a - b).powi(2))
        .sum();
    let den: f64 = want.iter().map(|b| f64::from(*b).powi(2)).sum();
    // Only f32 rounding differs (Hadamards applied to activations vs folded into W), but
    // the f16 KV cache can round a K/V value to the neighbouring f16: measured 2.3e-7.
    assert!(num / den < 1e-5, "nmse {}", num / den);
}

#[test]
fn trellis_formats_fall_back_where_rows_are_read() {
    let t3 = QuantFormat::from_name("trellis3").unwrap();
    assert_eq!(format_for(t3, 576), t3);
    assert_eq!(format_for(t3, 40), QuantFormat::F16);
    assert_eq!(row_format(t3), QuantFormat::Q8_0);
    assert_eq!(row_format(QuantFormat::Q4_K), QuantFormat::Q4_K);
    assert!(matches!(
        t3,
        QuantFormat::Trellis(TrellisFormat { bits: 3, .. })
    ));
    let m = Model::load_spec("synthetic:smollm2-135m:trellis4_mul1", &mut |_, _| {});
    assert_eq!(m.unwrap().config.n_layers, 30);
}

/// Build time of GLM-4.7-Flash-shaped trellis3 weights (4 of 47 layers, ~1 GB): random
/// tiles, no Viterbi. Run with `--ignored --nocapture`.
#[test]
#[ignore = "allocates ~1 GB"]
fn glm47_flash_trellis3_builds_fast() {
    let p = Preset {
        n_layers: 4,
        ..*Preset::by_name("glm47-flash").unwrap()
    };
    for name in ["trellis3", "q4_0"] {
        let t = std::time::Instant::now();
        let f = QuantFormat::from_name(name).unwrap();
        let m = build_preset(&p, f, &mut |_, _| {}).unwrap();
        let s = t.elapsed().as_secs_f64();
        let gb = m.weight_bytes() as f64 / 1e9;
        println!("{name}, 4 layers: {s:.2} s, {gb:.2} GB of weights read per token");
        assert!(s < 60.0);
    }
}
