//! Chat templates: rendering matches transformers (jinja2) on the real models' templates and
//! our built-in fallbacks; errors surface as `Error::Template`.

mod tokenizer_common;

use marlin_models::chat::{ChatMessage, ChatTemplate, GEMMA_TEMPLATE};
use marlin_models::Error;
use tokenizer_common::{fixture, ids, tokenizer, GEMMA, SMOLLM};

fn check_chats(model: (&str, &str)) {
    let tok = tokenizer(model);
    let bos = tok
        .bos_id()
        .and_then(|i| tok.token_str(i))
        .unwrap_or_default();
    let eos = tok
        .eos_ids()
        .first()
        .and_then(|&i| tok.token_str(i))
        .unwrap_or_default();
    let rows = fixture(model.0, "chat.json");
    let rows = rows.as_array().expect("rows");
    assert!(rows.len() >= 6);
    for row in rows {
        let name = row["template"].as_str().expect("template");
        let tmpl = match name {
            "model" => ChatTemplate::new(tok.chat_template().expect("model template")),
            "chatml" => ChatTemplate::chatml(),
            "gemma" => ChatTemplate::new(GEMMA_TEMPLATE),
            other => panic!("unknown template {other}"),
        }
        .expect("compile");
        let messages: Vec<ChatMessage> =
            serde_json::from_value(row["messages"].clone()).expect("messages");
        let gen = row["add_generation_prompt"].as_bool().expect("flag");
        let text = tmpl.render(&messages, gen, &bos, &eos).expect("render");
        assert_eq!(
            text,
            row["text"].as_str().expect("text"),
            "{name} template, gen={gen}"
        );
        let got = tok.encode_with(&text, false, true).expect("encode");
        assert_eq!(got, ids(&row["ids"]), "ids of rendered {name} chat");
    }
}

#[test]
fn smollm2_templates_match_reference() {
    check_chats(SMOLLM);
}

#[test]
fn gemma3_templates_match_reference() {
    check_chats(GEMMA);
}

#[test]
fn fallback_follows_the_vocabulary() {
    let msgs = [ChatMessage::new("user", "Hi")];
    let gemma = ChatTemplate::for_tokenizer(tokenizer(GEMMA)).expect("template");
    assert_eq!(
        gemma.render(&msgs, true, "<bos>", "<eos>").expect("render"),
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n"
    );
    let by_arch = ChatTemplate::fallback_for("gemma3").expect("template");
    assert_eq!(
        by_arch
            .render(&msgs, true, "<bos>", "<eos>")
            .expect("render"),
        gemma.render(&msgs, true, "<bos>", "<eos>").expect("render")
    );
    let chatml = ChatTemplate::fallback_for("llama").expect("template");
    assert_eq!(
        chatml.render(&msgs, true, "", "").expect("render"),
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
    // SmolLM2 ships its own template, which adds a default system turn.
    let smol = ChatTemplate::for_tokenizer(tokenizer(SMOLLM)).expect("template");
    let text = smol.render(&msgs, false, "", "").expect("render");
    assert!(text.starts_with("<|im_start|>system\nYou are a helpful AI assistant named SmolLM"));
    assert!(text.ends_with("<|im_start|>user\nHi<|im_end|>\n"));
}

#[test]
fn raise_exception_is_a_template_error() {
    let t = ChatTemplate::new(GEMMA_TEMPLATE).expect("compile");
    let msgs = [
        ChatMessage::new("assistant", "first"),
        ChatMessage::new("user", "x"),
    ];
    match t.render(&msgs, true, "<bos>", "<eos>") {
        Err(Error::Template(msg)) => {
            assert!(msg.contains("Conversation roles must alternate"), "{msg}")
        }
        other => panic!("expected a template error, got {other:?}"),
    }
}

#[test]
fn syntax_errors_are_template_errors() {
    match ChatTemplate::new("{% for m in messages %}{{ m.content }") {
        Err(Error::Template(msg)) => assert!(!msg.is_empty()),
        other => panic!("expected a template error, got {other:?}"),
    }
}

#[test]
fn python_methods_and_loop_controls() {
    let src =
        "{% for m in messages %}{% if m.content.startswith('skip') %}{% continue %}{% endif %}\
               [{{ m.role.upper() }}:{{ m.content.strip() }}|{{ m.content.split(',') | length }}]\
               {% if loop.index >= 3 %}{% break %}{% endif %}{% endfor %}";
    let t = ChatTemplate::new(src).expect("compile");
    let msgs = [
        ChatMessage::new("user", "  a, b  "),
        ChatMessage::new("assistant", "skip me"),
        ChatMessage::new("user", "c"),
        ChatMessage::new("user", "never"),
    ];
    assert_eq!(
        t.render(&msgs, false, "", "").expect("render"),
        "[USER:a, b|2][USER:c|1]"
    );
}
