//! `StreamDecoder`: streamed text equals the one-shot decode, and no piece ever carries a
//! broken character.

mod tokenizer_common;

use marlin_models::tokenizer::{StreamDecoder, StreamState, Tokenizer};
use tokenizer_common::{fixture, ids, tokenizer, GEMMA, SMOLLM};

fn stream(tok: &Tokenizer, ids: &[u32], skip_special: bool) -> Vec<String> {
    let mut dec = StreamDecoder::with_state(tok, StreamState::new(skip_special));
    let mut pieces: Vec<String> = ids.iter().map(|&id| dec.push(id).expect("push")).collect();
    pieces.push(dec.finish().expect("finish"));
    pieces
}

fn check_fixture_streams(model: (&str, &str)) {
    let tok = tokenizer(model);
    let rows = fixture(model.0, "tokens.json");
    for row in rows.as_array().expect("rows") {
        let ids = ids(&row["ids"]);
        for skip in [false, true] {
            let whole = tok.decode(&ids, skip).expect("decode");
            let pieces = stream(tok, &ids, skip);
            assert_eq!(pieces.concat(), whole, "stream of {:?}", row["text"]);
            if !whole.contains('\u{FFFD}') {
                assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
            }
        }
    }
}

#[test]
fn smollm2_stream_equals_decode() {
    check_fixture_streams(SMOLLM);
}

#[test]
fn gemma3_stream_equals_decode() {
    check_fixture_streams(GEMMA);
}

#[test]
fn gemma3_byte_fallback_waits_for_the_whole_character() {
    let tok = tokenizer(GEMMA);
    let crab: Vec<u32> = ["<0xF0>", "<0x9F>", "<0xA6>", "<0x80>"]
        .iter()
        .map(|t| tok.token_id(t).expect("byte token"))
        .collect();
    let hello = tok.encode_with("Hi", false, false).expect("encode");
    let mut ids = hello.clone();
    ids.extend(&crab);
    let pieces = stream(tok, &ids, false);
    assert_eq!(pieces[..hello.len()].concat(), "Hi");
    assert_eq!(&pieces[hello.len()..], ["", "", "", "🦀", ""]);
    assert_eq!(tok.token_bytes(crab[0]), Some(vec![0xF0]));
}

#[test]
fn smollm2_split_utf8_waits_for_the_whole_character() {
    let tok = tokenizer(SMOLLM);
    // "é" = C3 A9, spelled Ã and © in the byte alphabet.
    let c3 = tok.token_id("Ã").expect("byte token");
    let a9 = tok.token_id("©").expect("byte token");
    let mut dec = StreamState::new(false);
    assert_eq!(dec.push(tok, c3).expect("push"), "");
    assert_eq!(dec.push(tok, a9).expect("push"), "é");
    assert_eq!(tok.token_bytes(c3), Some(vec![0xC3]));
}

#[test]
fn dangling_bytes_are_flushed_at_finish() {
    let tok = tokenizer(SMOLLM);
    let c3 = tok.token_id("Ã").expect("byte token");
    let mut dec = StreamDecoder::new(tok);
    assert_eq!(dec.push(c3).expect("push"), "");
    assert_eq!(dec.finish().expect("finish"), "\u{FFFD}");
}

#[test]
fn continuation_after_context_keeps_the_space() {
    let tok = tokenizer(GEMMA);
    let prompt = tok.encode_with("Hello", false, false).expect("encode");
    let next = tok
        .encode_with("Hello world", false, false)
        .expect("encode");
    assert_eq!(next[..prompt.len()], prompt[..]);
    let mut dec = StreamDecoder::with_state(tok, StreamState::with_context(&prompt, false));
    let text = dec.push_all(&next[prompt.len()..]).expect("push");
    assert_eq!(text, " world");
}

#[test]
fn special_tokens_are_skipped_on_request() {
    let tok = tokenizer(SMOLLM);
    let ids = tok
        .encode_with("<|im_start|>assistant\nOK<|im_end|>", false, true)
        .expect("encode");
    assert_eq!(stream(tok, &ids, true).concat(), "assistant\nOK");
    assert_eq!(
        stream(tok, &ids, false).concat(),
        "<|im_start|>assistant\nOK<|im_end|>"
    );
}
