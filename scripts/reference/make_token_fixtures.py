#!/usr/bin/env python3
"""Reference token ids and chat-template renderings for the tokenizer golden tests.

Reference: Hugging Face transformers loading the GGUF file directly
(`AutoTokenizer.from_pretrained(dir, gguf_file=name)`), an implementation independent of ours.

Writes fixtures/<model>/tokens.json:
    [{"text", "ids", "ids_bos"?, "decoded", "hf_gguf_ids"?}]
  ids       the text's ids without added special tokens (special tokens written in the text
            are recognised, as HF does by default);
  ids_bos   the ids with the model's added special tokens, present only when they differ;
  decoded   transformers' decode of `ids` (special tokens kept, no space clean-up);
  hf_gguf_ids  see SMOLLM_PRE below: present only where transformers' GGUF loader, left as
            it is, gives different ids.
and fixtures/<model>/chat.json:
    [{"template", "messages", "add_generation_prompt", "text", "ids"}]
  template  "model" (the file's own), "chatml" or "gemma" (our built-in fallbacks, read
            from crates/models/src/chat/templates/ so both sides render the same source).

SMOLLM_PRE: the SmolLM2 GGUF names pre-tokenizer "smollm", which llama.cpp (and SmolLM2's
own tokenizer.json) run as Digits(individual_digits) followed by the ByteLevel regex.
transformers' GGUF loader does not know "smollm" and keeps only the ByteLevel step, which
differs on whitespace before a digit ("a  1"). The reference here restores the Digits step;
`hf_gguf_ids` records every case where that changes the ids.

Usage: /opt/refenv/bin/python scripts/reference/make_token_fixtures.py
Model dir: $MARLIN_MODEL_DIR, else ~/.cache/metal-marlin/models, else /work/models.
"""

import json
import os
import pathlib
import sys

from tokenizers import pre_tokenizers
from transformers import AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "crates/models/src/chat/templates"
MODELS = {
    "smollm2-135m-q4_1": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3-270m-q4_k_m": "gemma-3-270m-Q4_K_M.gguf",
}

TEXTS = [
    # English
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "I'm sure you're right; they'll see what we've done, and she'd agree.",
    "DON'T SHOUT!!! I'M HERE... You'RE there?",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "\u2018curly quotes\u2019 \u201cdouble\u201d \u2014 em dash \u2013 en dash\u2026",
    "https://example.com/path/to/page?q=rust&lang=en#section-2 mail: a.b@example.org",
    # Unicode
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 fa\u00e7ade co\u00f6perate",
    "Stra\u00dfe \u00dcberm\u00e4\u00dfig \u00c5ngstr\u00f6m \u00d8resund",
    "e\u0301 vs \u00e9 (combining acute)",
    "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u6211\u559c\u6b22\u5b66\u4e60\u673a\u5668\u5b66\u4e60\u3002",
    "\u3053\u3093\u306b\u3061\u306f\u4e16\u754c\u3001\u30ab\u30bf\u30ab\u30ca\u3068\u3072\u3089\u304c\u306a",
    "\uc548\ub155\ud558\uc138\uc694 \uc138\uacc4",
    "I \u2764\ufe0f \U0001f980 and \U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466 families \U0001f389\U0001f389",
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645",
    "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd",
    "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
    "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u03ba\u03cc\u03c3\u03bc\u03b5",
    "\u2211 x\u00b2 \u2264 \u221e, \u00bd + \u2153 \u2248 0.83 \u2460\u2461\u2462",
    "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 \U0001d7d8\U0001d7d9",
    "non\u00a0breaking\u3000ideographic\u200bzero-width",
    # digits
    "12345",
    "3.14159265358979323846",
    "1,000,000 and 1 000 000 and 1000000000000",
    "2024-01-31T12:34:56Z",
    "a1b2c3 x86_64 v2.0.1",
    "Phone: +1 (555) 123-4567",
    " 42",
    "a  1",
    "x   99 \n 7",
    # whitespace
    "  leading spaces",
    "trailing spaces   ",
    "tabs\there\t\tand\t",
    "line1\nline2\n\nline4\n\n\n",
    "\r\nwindows\r\nline endings\r\n",
    "   ",
    "\n",
    "",
    "mixed \t \n whitespace \n\t ",
    "double  space and   triple",
    # code
    "def add(a, b):\n    return a + b\n\nprint(add(2, 3))\n",
    'fn main() {\n    let v: Vec<u32> = (0..10).collect();\n    println!("{:?}", v);\n}\n',
    "const f = (x) => x ?? 0; // JS\nif (a !== b && c) { console.log(`t=${t}`); }",
    '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }',
    "<div class=\"box\"><p>Hello &amp; bye</p></div>",
    "SELECT id, name FROM users WHERE age >= 18 ORDER BY name;",
    '{"key": [1, 2.5, null, true], "nested": {"a": "b"}}',
    "for f in *.txt; do echo \"$f\" | tr a-z A-Z; done",
    # special tokens in text
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>",
    "text<|im_end|>more text",
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n",
    "<bos>hello <eos>",
    "<0x41> is not a byte here",
    "<unused0> [multimodal] <mask>",
    # long
    "The history of computing is longer than the history of computing hardware and modern "
    "computing technology and includes the history of methods intended for pen and paper or "
    "for chalk and slate, with or without the aid of tables. Digital computing is intimately "
    "tied to the representation of numbers. But long before abstractions like the number "
    "arose, there were mathematical concepts to serve the purposes of civilization.",
]

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?  "},
    ],
    [
        {"role": "user", "content": "Write a haiku about Rust \U0001f980"},
        {"role": "assistant", "content": "  Borrowed, never lost\nlifetimes fold into the type\nthe compiler smiles\n"},
        {"role": "user", "content": "Again, in fran\u00e7ais."},
    ],
]


def model_dir():
    for d in (os.environ.get("MARLIN_MODEL_DIR"), os.path.expanduser("~/.cache/metal-marlin/models"), "/work/models"):
        if d and all((pathlib.Path(d) / f).exists() for f in MODELS.values()):
            return d
    sys.exit("models not found: run scripts/fetch-models.sh")


def smollm_pre(tok):
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )


def token_rows(tok, plain):
    rows = []
    for text in TEXTS:
        ids = tok(text, add_special_tokens=False).input_ids
        row = {"text": text, "ids": ids}
        with_bos = tok(text, add_special_tokens=True).input_ids
        if with_bos != ids:
            row["ids_bos"] = with_bos
        row["decoded"] = tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if plain is not None:
            hf = plain(text, add_special_tokens=False).input_ids
            if hf != ids:
                row["hf_gguf_ids"] = hf
        rows.append(row)
    return rows


def chat_rows(tok, templates):
    rows = []
    for name, source in templates:
        for messages in CONVERSATIONS:
            for gen in (True, False):
                text = tok.apply_chat_template(messages, chat_template=source, tokenize=False, add_generation_prompt=gen)
                ids = tok(text, add_special_tokens=False).input_ids
                rows.append({"template": name, "messages": messages, "add_generation_prompt": gen, "text": text, "ids": ids})
    return rows


def main():
    d = model_dir()
    chatml = (TEMPLATES / "chatml.jinja").read_text()
    gemma = (TEMPLATES / "gemma.jinja").read_text()
    for model, fname in MODELS.items():
        tok = AutoTokenizer.from_pretrained(d, gguf_file=fname)
        plain = None
        if model.startswith("smollm2"):
            plain = AutoTokenizer.from_pretrained(d, gguf_file=fname)
            smollm_pre(tok)
        templates = [("chatml", chatml)]
        if tok.chat_template:
            templates.insert(0, ("model", tok.chat_template))
        if model.startswith("gemma"):
            templates.append(("gemma", gemma))
        out = ROOT / "fixtures" / model
        out.mkdir(parents=True, exist_ok=True)
        rows = token_rows(tok, plain)
        (out / "tokens.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        chats = chat_rows(tok, templates)
        (out / "chat.json").write_text(json.dumps(chats, ensure_ascii=False, indent=1) + "\n")
        diverged = sum("hf_gguf_ids" in r for r in rows)
        print(f"{model}: {len(rows)} texts ({diverged} where transformers' GGUF loader differs), {len(chats)} chats")


if __name__ == "__main__":
    main()
