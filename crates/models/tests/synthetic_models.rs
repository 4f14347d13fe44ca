//! Synthetic random-weight models: shapes, byte counts, a CPU forward pass, the tokenizer,
//! and clear errors for bad specs.

use marlin_core::QuantFormat;
use marlin_models::kv_cache::KvCache;
use marlin_models::synthetic::{format_for, Preset, SyntheticSpec};
use marlin_models::{LogitsRequest, Model, SeqInput};

fn build(spec: &str) -> Model {
    let mut calls = Vec::new();
    let m = Model::load_spec(spec, &mut |d, t| calls.push((d, t))).unwrap();
    let last = *calls.last().unwrap();
    assert_eq!(last.0, last.1, "progress ends at its total");
    assert_eq!(last.1, m.config.n_layers + 2);
    m
}

/// Bytes per decoded token the preset's matrices take in `format` (tied LM head included).
fn expected_weight_bytes(p: &Preset, format: QuantFormat) -> usize {
    let (d, q, kv, f) = (
        p.hidden,
        p.n_heads * p.head_dim,
        p.n_kv_heads * p.head_dim,
        p.ffn,
    );
    let bytes = |rows: usize, cols: usize| rows * format_for(format, cols).row_bytes(cols).unwrap();
    let layer = bytes(q, d) + 2 * bytes(kv, d) + bytes(d, q) + 2 * bytes(f, d) + bytes(d, f);
    p.n_layers * layer + bytes(p.vocab, d)
}

fn check_model(format: QuantFormat) {
    let spec = format!("synthetic:smollm2-135m:{format}");
    let m = build(&spec);
    let p = Preset::by_name("smollm2-135m").unwrap();
    assert_eq!(m.name, spec);
    assert_eq!(m.config.hidden, 576);
    assert_eq!(m.config.n_layers, 30);
    assert_eq!((m.config.n_heads, m.config.n_kv_heads), (9, 3));
    assert_eq!(m.config.vocab, 49152);
    assert_eq!(m.weights.layers.len(), 30);
    let l0 = &m.weights.layers[0];
    assert_eq!(l0.q.weight.shape, vec![576, 576]);
    assert_eq!(l0.k.weight.shape, vec![192, 576]);
    assert_eq!(l0.gate.weight.shape, vec![1536, 576]);
    assert_eq!(l0.down.weight.shape, vec![576, 1536]);
    assert_eq!(m.weights.embed.shape, vec![49152, 576]);
    assert_eq!(l0.q.weight.format, format);
    assert_eq!(m.weight_bytes(), expected_weight_bytes(p, format));
    assert_eq!(m.tokenizer.vocab_size(), 49152);

    let tokens = [1u32, 300, 4000, 49151];
    let mut kv = KvCache::for_tokens(&m.config, tokens.len());
    let seq = SeqInput {
        tokens: &tokens,
        start_pos: 0,
        block_table: &[0],
        logits: LogitsRequest::All,
    };
    let logits = m.forward(&[seq], &mut kv).unwrap();
    assert_eq!(logits.rows(), tokens.len());
    assert_eq!(logits.vocab, 49152);
    assert!(logits.data.iter().all(|x| x.is_finite()));
    let spread = logits.row(3).iter().fold(0f32, |a, &x| a.max(x.abs()));
    assert!(spread > 1e-3, "logits are not all zero: {spread}");
}

#[test]
fn smollm2_q4_0_builds_and_runs() {
    check_model(QuantFormat::Q4_0);
}

#[test]
fn smollm2_q8_0_builds_and_runs() {
    check_model(QuantFormat::Q8_0);
}

#[test]
fn k_quants_fall_back_where_the_width_is_not_whole_blocks() {
    assert_eq!(format_for(QuantFormat::Q4_K, 576), QuantFormat::Q5_0);
    assert_eq!(format_for(QuantFormat::Q4_K, 4096), QuantFormat::Q4_K);
    assert_eq!(format_for(QuantFormat::Q6_K, 576), QuantFormat::Q8_0);
    assert_eq!(format_for(QuantFormat::Q4_0, 40), QuantFormat::F16);
}

#[test]
fn tokenizer_round_trips_and_chat_template_is_chatml() {
    let m = build("synthetic:smollm2-135m:q8_0");
    let ids = m.tokenizer.encode("hi there", false).unwrap();
    assert_eq!(ids[0], 1, "BOS first");
    assert_eq!(m.tokenizer.decode(&ids, true).unwrap(), "hi there");
    assert!(m.tokenizer.is_eos(2));
    let im_end = m.tokenizer.token_id("<|im_end|>").unwrap();
    assert!(m.tokenizer.is_eos(im_end));
}

#[test]
fn presets_have_the_real_shapes() {
    let s = SyntheticSpec::parse("synthetic:llama3-8b:q4_k").unwrap();
    assert_eq!(s.name(), "synthetic:llama3-8b:q4_k");
    let c = s.preset.config();
    assert_eq!(
        (c.hidden, c.n_layers, c.ffn, c.vocab),
        (4096, 32, 14336, 128256)
    );
    assert_eq!((c.n_heads, c.n_kv_heads, c.head_dim), (32, 8, 128));
    assert!(!s.preset.tied);
    let b = Preset::by_name("llama3-1b").unwrap();
    assert_eq!(
        (b.hidden, b.n_layers, b.ffn, b.head_dim),
        (2048, 16, 8192, 64)
    );
    assert!(b.tied);
    c.validate().unwrap();
}

#[test]
fn bad_specs_are_clear_errors() {
    let err = |s: &str| match Model::load_spec(s, &mut |_, _| {}) {
        Ok(_) => panic!("{s} loaded"),
        Err(e) => e.to_string(),
    };
    let e = err("synthetic:nope:q4_0");
    assert!(e.contains("unknown synthetic preset `nope`"), "{e}");
    assert!(e.contains("llama3-8b"), "{e}");
    let e = err("synthetic:llama3-8b:xyz");
    assert!(e.contains("unknown weight format `xyz`"), "{e}");
    let e = err("synthetic:llama3-8b");
    assert!(e.contains("synthetic:PRESET:FORMAT"), "{e}");
    let e = err("/no/such/model.gguf");
    assert!(e.contains("synthetic:PRESET:FORMAT"), "{e}");
}

/// The full 8B model (about 4.6 GB in q4_0): run with `--ignored` to time the build.
#[test]
#[ignore = "allocates ~4.6 GB"]
fn llama3_8b_q4_0_builds() {
    let t = std::time::Instant::now();
    let m = build("synthetic:llama3-8b:q4_0");
    eprintln!("llama3-8b q4_0 built in {:.1} s", t.elapsed().as_secs_f64());
    let p = Preset::by_name("llama3-8b").unwrap();
    assert_eq!(
        m.weight_bytes(),
        expected_weight_bytes(p, QuantFormat::Q4_0)
    );
    assert_eq!(m.weight_bytes(), 4_221_370_368);
    let (embed, head) = (&m.weights.embed, &m.weights.lm_head);
    assert_ne!(
        embed.bytes().as_ptr(),
        head.bytes().as_ptr(),
        "untied LM head"
    );
}

#[test]
fn bare_fp4_and_int_names_mean_group_128() {
    let fp4 = SyntheticSpec::parse("synthetic:llama3-8b:fp4").unwrap();
    assert_eq!(fp4.name(), "synthetic:llama3-8b:fp4_g128");
    let int4 = SyntheticSpec::parse("synthetic:glm47-flash:int4").unwrap();
    assert_eq!(int4.name(), "synthetic:glm47-flash:int4_g128");
    let err = SyntheticSpec::parse("synthetic:llama3-8b:fp5").unwrap_err();
    assert!(
        err.to_string().contains("unknown weight format `fp5`"),
        "{err}"
    );
}
