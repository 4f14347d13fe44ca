//! Tokenizer API facts: special ids of the real models, literal vs parsed special tokens,
//! bad input, `tokenizer.json` loading, and small synthetic GGUF vocabularies.

mod tokenizer_common;

use marlin_models::gguf::{MetaValue, Metadata};
use marlin_models::tokenizer::{Tokenizer, TokenizerModel, TokenizerSpec};
use marlin_models::Error;
use tokenizer_common::{spec, tokenizer, GEMMA, SMOLLM};

#[test]
fn smollm2_special_ids() {
    let tok = tokenizer(SMOLLM);
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!(tok.bos_id(), Some(1));
    assert!(!tok.add_bos());
    assert_eq!(tok.eos_ids(), [2, 0]); // <|im_end|>, then <|endoftext|>
    assert!(tok.is_special(2) && !tok.is_special(100));
    assert_eq!(tok.token_str(2).as_deref(), Some("<|im_end|>"));
    assert_eq!(
        tok.encode("Hi", true).expect("encode"),
        tok.encode_with("Hi", false, true).expect("encode")
    );
    assert!(tok
        .chat_template()
        .is_some_and(|t| t.contains("<|im_start|>")));
}

#[test]
fn gemma3_special_ids() {
    let tok = tokenizer(GEMMA);
    assert_eq!(tok.vocab_size(), 262144);
    assert_eq!(tok.bos_id(), Some(2));
    assert!(tok.add_bos());
    assert_eq!(tok.eos_ids(), [1, 106]); // <eos>, then <end_of_turn>
    assert_eq!(tok.encode("Hi", false).expect("encode")[0], 2);
    assert_eq!(tok.token_bytes(236743), Some(b" ".to_vec()));
    assert!(tok.chat_template().is_none());
    let s = spec(GEMMA);
    assert_eq!(s.model, TokenizerModel::Llama);
    assert!(!s.add_space_prefix);
}

#[test]
fn special_tokens_are_text_unless_parsed() {
    let tok = tokenizer(SMOLLM);
    let parsed = tok.encode_with("a<|im_end|>", false, true).expect("encode");
    let literal = tok
        .encode_with("a<|im_end|>", false, false)
        .expect("encode");
    assert_eq!(parsed.last(), Some(&2));
    assert!(literal.len() > 2 && !literal.contains(&2), "{literal:?}");
    assert_eq!(tok.decode(&literal, false).expect("decode"), "a<|im_end|>");
    let gemma = tokenizer(GEMMA);
    let literal = gemma
        .encode_with("<end_of_turn>", false, false)
        .expect("encode");
    assert!(!literal.contains(&106), "{literal:?}");
    // User-defined tokens ("\n\n") are matched either way, as llama.cpp does.
    assert_eq!(
        gemma.encode_with("\n\n", false, false).expect("encode"),
        [108]
    );
}

#[test]
fn out_of_range_ids_are_errors() {
    let tok = tokenizer(SMOLLM);
    match tok.decode(&[5, 49152], false) {
        Err(Error::Tokenizer(msg)) => assert!(msg.contains("49152"), "{msg}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(tok.token_str(1 << 30), None);
}

#[test]
fn tokenizer_json_round_trip() {
    let tok = tokenizer(SMOLLM);
    let dir = std::env::temp_dir().join(format!("marlin-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("tokenizer.json");
    tok.inner().save(&path, false).expect("save");
    let config = r#"{"bos_token": {"content": "<|im_start|>"}, "eos_token": "<|im_end|>",
        "add_bos_token": false, "chat_template": "{{ messages[0]['content'] }}"}"#;
    std::fs::write(dir.join("tokenizer_config.json"), config).expect("write");
    let loaded = Tokenizer::from_file(&path).expect("load");
    let _ = std::fs::remove_dir_all(&dir);
    let text = "<|im_start|>user\nnaïve 12345  x<|im_end|>";
    assert_eq!(
        loaded.encode(text, true).expect("encode"),
        tok.encode(text, true).expect("encode")
    );
    assert_eq!(loaded.bos_id(), Some(1));
    assert_eq!(loaded.eos_ids(), [2, 0]);
    assert_eq!(loaded.chat_template(), Some("{{ messages[0]['content'] }}"));
    assert!(loaded.is_special(0) && !loaded.is_special(17));
}

#[test]
fn missing_tokenizer_json_is_an_error() {
    assert!(matches!(
        Tokenizer::from_file("/nonexistent/tokenizer.json"),
        Err(Error::Tokenizer(_))
    ));
}

fn strs(v: &[&str]) -> MetaValue {
    MetaValue::from(v.to_vec())
}

fn gpt2_metadata() -> Metadata {
    let mut md = Metadata::default();
    let kv: Vec<(&str, MetaValue)> = vec![
        ("tokenizer.ggml.model", "gpt2".into()),
        ("tokenizer.ggml.pre", "gpt-2".into()),
        (
            "tokenizer.ggml.tokens",
            strs(&["<s>", "a", "b", "ab", "Ġ", "Ġab", "1", "2"]),
        ),
        (
            "tokenizer.ggml.token_type",
            MetaValue::from(vec![3i32, 1, 1, 1, 1, 1, 1, 1]),
        ),
        ("tokenizer.ggml.merges", strs(&["a b", "Ġ ab"])),
        ("tokenizer.ggml.bos_token_id", MetaValue::U32(0)),
        ("tokenizer.ggml.add_bos_token", MetaValue::Bool(true)),
    ];
    for (k, v) in kv {
        md.insert(k.to_string(), v).expect("insert");
    }
    md
}

#[test]
fn synthetic_byte_level_vocabulary() {
    let spec = TokenizerSpec::from_metadata(&gpt2_metadata()).expect("spec");
    let tok = Tokenizer::from_spec(&spec).expect("build");
    assert_eq!(
        tok.encode("ab ab12", false).expect("encode"),
        [0, 3, 5, 6, 7]
    );
    assert_eq!(tok.encode("<s>ab", true).expect("encode"), [0, 3]);
    assert_eq!(tok.decode(&[0, 3, 5], true).expect("decode"), "ab ab");
}

#[test]
fn bad_metadata_is_rejected() {
    let mut md = gpt2_metadata();
    md.insert("tokenizer.ggml.eos_token_id".into(), MetaValue::U32(99))
        .expect("insert");
    assert!(matches!(
        TokenizerSpec::from_metadata(&md),
        Err(Error::Tokenizer(_))
    ));

    let mut md = Metadata::default();
    md.insert("tokenizer.ggml.model".into(), "bert".into())
        .expect("insert");
    assert!(matches!(
        TokenizerSpec::from_metadata(&md),
        Err(Error::Unsupported(_))
    ));

    let mut md = Metadata::default();
    md.insert("tokenizer.ggml.model".into(), "llama".into())
        .expect("insert");
    assert!(matches!(
        TokenizerSpec::from_metadata(&md),
        Err(Error::MissingKey(_))
    ));

    let mut s = TokenizerSpec::from_metadata(&gpt2_metadata()).expect("spec");
    s.token_types.pop();
    assert!(matches!(Tokenizer::from_spec(&s), Err(Error::Tokenizer(_))));
}

#[test]
fn synthetic_sentencepiece_vocabulary() {
    let mut tokens: Vec<String> = ["<unk>", "<s>", "</s>"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    tokens.extend((0..=255).map(|b| format!("<0x{b:02X}>")));
    let pieces = [
        "▁", "h", "e", "l", "o", "▁h", "he", "ll", "llo", "▁he", "▁hello",
    ];
    tokens.extend(pieces.iter().map(|s| s.to_string()));
    let n = tokens.len();
    let mut token_types = vec![3, 3, 3];
    token_types.extend(std::iter::repeat_n(6, 256));
    token_types.extend(std::iter::repeat_n(1, pieces.len()));
    let scores: Vec<f32> = (0..n).map(|i| -(i as f32)).collect();
    let spec = TokenizerSpec {
        model: TokenizerModel::Llama,
        pre: None,
        arch: Some("llama".into()),
        tokens,
        token_types,
        merges: Vec::new(),
        scores,
        bos_id: Some(1),
        eos_id: Some(2),
        unk_id: Some(0),
        pad_id: None,
        add_bos: true,
        add_eos: false,
        add_space_prefix: true,
        chat_template: None,
    };
    let tok = Tokenizer::from_spec(&spec).expect("build");
    let id = |s: &str| tok.token_id(s).expect("token");
    // Leading "▁" comes from add_space_prefix; "é" falls back to its bytes.
    assert_eq!(
        tok.encode("hello é", false).expect("encode"),
        [1, id("▁hello"), id("▁"), id("<0xC3>"), id("<0xA9>")]
    );
    assert_eq!(
        tok.decode(
            &[1, id("▁hello"), id("▁"), id("<0xC3>"), id("<0xA9>")],
            true
        )
        .expect("decode"),
        "hello é"
    );
    assert_eq!(tok.eos_ids(), [2]);
}
