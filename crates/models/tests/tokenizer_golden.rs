//! Golden tests: our tokenizers against transformers' ids for the real test models
//! (fixtures made by scripts/reference/make_token_fixtures.py).

mod tokenizer_common;

use tokenizer_common::{fixture, ids, tokenizer, GEMMA, SMOLLM};

fn check_tokens(model: (&str, &str)) {
    let tok = tokenizer(model);
    let rows = fixture(model.0, "tokens.json");
    let rows = rows.as_array().expect("rows");
    assert!(rows.len() >= 40, "fixture too small");
    let mut failures = Vec::new();
    for row in rows {
        let text = row["text"].as_str().expect("text");
        let want = ids(&row["ids"]);
        let got = tok.encode_with(text, false, true).expect("encode");
        if got != want {
            failures.push(format!("encode {text:?}\n  want {want:?}\n  got  {got:?}"));
            continue;
        }
        let mut want_bos = row.get("ids_bos").map(ids).unwrap_or_else(|| want.clone());
        // We do not add a second BOS to a text that already starts with one.
        if want_bos.len() >= 2 && want_bos[0] == want_bos[1] && Some(want_bos[0]) == tok.bos_id() {
            want_bos.remove(0);
        }
        let got_bos = tok.encode(text, true).expect("encode");
        if got_bos != want_bos {
            failures.push(format!(
                "encode+bos {text:?}\n  want {want_bos:?}\n  got  {got_bos:?}"
            ));
        }
        let decoded = tok.decode(&want, false).expect("decode");
        if decoded != row["decoded"].as_str().expect("decoded") {
            failures.push(format!("decode {text:?} -> {decoded:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_matches_reference() {
    check_tokens(SMOLLM);
}

#[test]
fn gemma3_matches_reference() {
    check_tokens(GEMMA);
}
