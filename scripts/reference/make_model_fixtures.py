#!/usr/bin/env python3
"""Golden references for the real test models, made with Hugging Face transformers.

An implementation independent of ours (transformers loads the GGUF file and dequantizes every
tensor to f32, then runs its own PyTorch model code on the CPU) produces, per model:

  fixtures/<model>/logits.json      prompt token ids, top-20 logits at every position, full-vector
                                    statistics, greedy continuations
  fixtures/<model>/perplexity.json  perplexity of fixtures/text/english.txt, llama-perplexity style

Usage (5-10 minutes on 2 cores):
  nice /opt/refenv/bin/python scripts/reference/make_model_fixtures.py \
      --models-dir /work/models [--only smollm2|gemma3] [--threads 2]

Needs torch, transformers (>= 5), gguf, numpy, accelerate (transformers requires accelerate to
load GGUF files).

Perplexity convention (llama.cpp tools/perplexity/perplexity.cpp, function `perplexity`):
  * The text is the file's content with ONE trailing '\\n' removed (what `-f` does).
  * tokens = tokenize(text, add_special=True): BOS is prepended only when the model's
    `tokenizer.ggml.add_bos_token` is true (Gemma 3: yes, SmolLM2: no). No EOS.
  * n_chunk = len(tokens) // n_ctx (the remainder is dropped); chunk c is
    tokens[c*n_ctx : (c+1)*n_ctx], evaluated from an empty KV cache at positions 0..n_ctx-1.
  * When add_bos: the chunk's FIRST token is replaced by BOS before evaluation (for chunk 0 it is
    already BOS). The replaced token is never scored.
  * first = n_ctx // 2. For j in first ..= n_ctx-2 (i.e. range(first, n_ctx - 1)):
        nll += logsumexp(logits[j]) - logits[j][chunk[j+1]]
    so logits at position j predict the token at j+1; scored targets are chunk positions
    first+1 ..= n_ctx-1; count += n_ctx - first - 1 (= 255 for n_ctx 512).
  * ppl = exp(nll_sum / count), count = n_chunk * (n_ctx - first - 1). The running value printed
    after chunk c is exp(nll over chunks 0..=c / count over chunks 0..=c).
  "all_positions" is our own extra variant (llama-perplexity has no flag for it; its only other
  mode is --ppl-stride): same chunks and BOS rule, j in 0 ..= n_ctx-2, count n_ctx-1 per chunk.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

TOP_K = 20
GREEDY_TOKENS = 24
N_CTX = 512
LOGIT_DECIMALS = 5
NLL_DECIMALS = 5

RAW_PROMPTS = [
    (
        "english",
        "The capital of France is Paris. The capital of Germany is Berlin. The capital of Italy is",
    ),
    (
        "code",
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fib",
    ),
    (
        "digits_unicode",
        "In 2023, Zürich's café sold 1,234 crêpes at €4.50 — naïve 東京 😀",
    ),
]

# Chat questions are per model: picked so that the 24-token greedy path has no top-1/top-2 logit
# gap below 0.1 (robust to quantized-activation noise in the engine under test).
MODELS = {
    "smollm2": {
        "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "fixture_dir": "smollm2-135m-q4_1",
        "chat_question": "What is 2+2?",
    },
    "gemma3": {
        "file": "gemma-3-270m-Q4_K_M.gguf",
        "fixture_dir": "gemma3-270m-q4_k_m",
        "chat_question": "What is the capital of France?",
    },
}

# The gemma-3-270m GGUF has no tokenizer.chat_template; this is Gemma 3's published template for
# one user turn with the generation prompt (BOS is added by the tokenizer, not written here).
GEMMA3_CHAT = "<start_of_turn>user\n{q}<end_of_turn>\n<start_of_turn>model\n"

CONFIG_KEYS = [
    "model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_parameters", "max_position_embeddings",
    "vocab_size", "tie_word_embeddings", "hidden_act", "hidden_activation", "sliding_window",
    "layer_types", "query_pre_attn_scalar", "attn_logit_softcapping", "final_logit_softcapping",
    "bos_token_id", "eos_token_id", "pad_token_id",
]


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def gguf_add_bos(path: Path) -> bool:
    import gguf

    field = gguf.GGUFReader(str(path)).fields.get("tokenizer.ggml.add_bos_token")
    return bool(field.contents()) if field is not None else False


def versions() -> dict:
    import gguf  # noqa: F401
    import transformers
    from importlib.metadata import version

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gguf": version("gguf"),
        "numpy": np.__version__,
    }


def render_chat(key: str, tok) -> str:
    question = MODELS[key]["chat_question"]
    if key == "gemma3":
        return GEMMA3_CHAT.format(q=question)
    return tok.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )


def encode(tok, text: str, add_bos: bool) -> list[int]:
    """Tokenize like llama.cpp's tokenize(text, add_special=True, parse_special=True)."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if add_bos:
        ids = [tok.bos_token_id] + ids
    return ids


def top_k_sorted(row: np.ndarray, k: int) -> list[list]:
    """Top-k [id, logit], highest logit first, ties by lower id."""
    cand = np.argpartition(-row, k + 8)[: k + 8]
    order = np.lexsort((cand, -row[cand]))[:k]
    return [[int(cand[i]), round(float(row[cand[i]]), LOGIT_DECIMALS)] for i in order]


def row_stats(row: np.ndarray) -> dict:
    r = row.astype(np.float64)
    mx = float(r.max())
    lse = mx + math.log(float(np.exp(r - mx).sum()))
    return {
        "max": round(mx, LOGIT_DECIMALS),
        "logsumexp": round(lse, LOGIT_DECIMALS),
        "mean": round(float(r.mean()), LOGIT_DECIMALS),
        "std": round(float(r.std()), LOGIT_DECIMALS),
    }


@torch.no_grad()
def logits_for(model, ids: list[int]) -> np.ndarray:
    out = model(input_ids=torch.tensor([ids]), use_cache=False)
    return out.logits[0].float().numpy()


@torch.no_grad()
def greedy(model, tok, ids: list[int]) -> dict:
    from transformers import GenerationConfig

    cfg = GenerationConfig(
        do_sample=False, max_new_tokens=GREEDY_TOKENS, min_new_tokens=0,
        eos_token_id=None, pad_token_id=tok.pad_token_id, top_k=None, top_p=None, temperature=None,
    )
    # Keep going through EOS: the fixture is a fixed-length greedy path (stop ids are recorded).
    model.generation_config.eos_token_id = None
    inp = torch.tensor([ids])
    out = model.generate(inp, attention_mask=torch.ones_like(inp), generation_config=cfg)
    gen = [int(t) for t in out[0, len(ids):]]
    if len(gen) != GREEDY_TOKENS:
        sys.exit(f"generate stopped after {len(gen)} tokens")
    # Cross-check without a KV cache; record top-2 margins so a consumer can tell near-ties.
    seq, margins, manual = list(ids), [], []
    for _ in range(GREEDY_TOKENS):
        row = logits_for(model, seq)[-1]
        (a, la), (b, lb) = top_k_sorted(row, 2)
        manual.append(a)
        margins.append(round(la - lb, LOGIT_DECIMALS))
        seq.append(a)
    return {
        "ids": gen,
        "text": tok.decode(gen),
        "no_cache_recompute_ids": manual,
        "agrees_with_no_cache_recompute": gen == manual,
        "top1_minus_top2_logit": margins,
    }


def make_logits(key: str, model, tok, add_bos: bool) -> list[dict]:
    prompts = [("chat", render_chat(key, tok))] + RAW_PROMPTS
    result = []
    for idx, (name, text) in enumerate(prompts):
        ids = encode(tok, text, add_bos)
        if len(ids) > 48:
            sys.exit(f"prompt {name} is {len(ids)} tokens; keep prompts short")
        logits = logits_for(model, ids)
        entry = {
            "name": name,
            "text": text,
            "bos_added": add_bos,
            "ids": ids,
            "top20": [top_k_sorted(row, TOP_K) for row in logits],
            "stats": [row_stats(row) for row in logits],
        }
        if idx < 2:
            entry["greedy"] = greedy(model, tok, ids)
        result.append(entry)
        print(f"  {name}: {len(ids)} tokens", flush=True)
    return result


@torch.no_grad()
def chunk_nll(model, chunk: list[int]) -> np.ndarray:
    """nll[j] = -log p(chunk[j+1] | chunk[..=j]) for j in 0..n_ctx-1 (f64)."""
    hidden = model.model(input_ids=torch.tensor([chunk]), use_cache=False).last_hidden_state[0]
    nll = np.empty(len(chunk) - 1, dtype=np.float64)
    for s in range(0, len(chunk) - 1, 64):
        e = min(s + 64, len(chunk) - 1)
        rows = model.lm_head(hidden[s:e]).float().numpy().astype(np.float64)
        mx = rows.max(axis=1, keepdims=True)
        lse = mx[:, 0] + np.log(np.exp(rows - mx).sum(axis=1))
        nll[s:e] = lse - rows[np.arange(e - s), chunk[s + 1 : e + 1]]
    return nll


def make_perplexity(model, tok, add_bos: bool, text_path: Path) -> dict:
    if getattr(model.config, "final_logit_softcapping", None):
        sys.exit("final_logit_softcapping is set; chunk_nll would need to apply it")
    text = text_path.read_text(encoding="utf-8")
    if text.endswith("\n"):
        text = text[:-1]
    tokens = encode(tok, text, add_bos)
    n_chunk = len(tokens) // N_CTX
    first = N_CTX // 2
    half = {"nll_sum": 0.0, "count": 0, "per_chunk_nll_sum": [], "running_ppl": [], "nll": []}
    full = {"nll_sum": 0.0, "count": 0, "per_chunk_nll_sum": []}
    for c in range(n_chunk):
        t0 = time.time()
        chunk = tokens[c * N_CTX : (c + 1) * N_CTX]
        if add_bos:
            chunk[0] = tok.bos_token_id
        nll = chunk_nll(model, chunk)
        scored = nll[first:]  # j = first ..= n_ctx-2
        half["nll_sum"] += float(scored.sum())
        half["count"] += len(scored)
        half["per_chunk_nll_sum"].append(float(scored.sum()))
        half["running_ppl"].append(math.exp(half["nll_sum"] / half["count"]))
        half["nll"].append([round(float(v), NLL_DECIMALS) for v in scored])
        full["nll_sum"] += float(nll.sum())
        full["count"] += len(nll)
        full["per_chunk_nll_sum"].append(float(nll.sum()))
        print(f"  chunk {c}: running ppl {half['running_ppl'][-1]:.4f} ({time.time() - t0:.1f}s)",
              flush=True)
    half["ppl"] = math.exp(half["nll_sum"] / half["count"])
    full["ppl"] = math.exp(full["nll_sum"] / full["count"])
    return {
        "text_file": "fixtures/text/english.txt",
        "text_sha256": hashlib.sha256(text_path.read_bytes()).hexdigest(),
        "trailing_newline_stripped": True,
        "add_bos": add_bos,
        "bos_token_id": tok.bos_token_id if add_bos else None,
        "n_ctx": N_CTX,
        "first": first,
        "n_tokens": len(tokens),
        "n_chunks": n_chunk,
        "tokens": tokens,
        "second_half": half,
        "all_positions": full,
    }


def run_model(key: str, models_dir: Path, out_root: Path, text_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = MODELS[key]
    path = models_dir / spec["file"]
    add_bos = gguf_add_bos(path)
    print(f"{key}: loading {path} (add_bos={add_bos})", flush=True)
    tok = AutoTokenizer.from_pretrained(str(models_dir), gguf_file=spec["file"])
    model = AutoModelForCausalLM.from_pretrained(
        str(models_dir), gguf_file=spec["file"], dtype=torch.float32
    )
    model.eval()
    cfg = model.config.to_dict()
    meta = {
        "model_file": spec["file"],
        "model_sha256": sha256_of(path),
        "model_bytes": path.stat().st_size,
        "generator": "scripts/reference/make_model_fixtures.py",
        "versions": versions(),
        "dtype": "float32 (GGUF tensors dequantized by transformers)",
        "hf_config": {k: cfg[k] for k in CONFIG_KEYS if k in cfg},
        "add_bos": add_bos,
        "bos_token_id": tok.bos_token_id,
        "stop_token_ids": sorted({int(tok.eos_token_id)} | ({106} if key == "gemma3" else set())),
    }
    out_dir = out_root / spec["fixture_dir"]
    out_dir.mkdir(parents=True, exist_ok=True)

    logits = {
        **meta,
        "top_k": TOP_K,
        "logit_decimals": LOGIT_DECIMALS,
        "greedy_tokens": GREEDY_TOKENS,
        "prompts": make_logits(key, model, tok, add_bos),
    }
    write_json(out_dir / "logits.json", logits)
    ppl = {**meta, **make_perplexity(model, tok, add_bos, text_path)}
    write_json(out_dir / "perplexity.json", ppl)
    print(f"{key}: ppl(second half) = {ppl['second_half']['ppl']:.4f}, "
          f"ppl(all positions) = {ppl['all_positions']['ppl']:.4f}", flush=True)


def write_json(path: Path, obj: dict) -> None:
    """Compact JSON, one top-level key (and one prompt / position row) per line."""
    def dump(v) -> str:
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))

    lines = ["{"]
    items = list(obj.items())
    for i, (k, v) in enumerate(items):
        sep = "," if i + 1 < len(items) else ""
        if isinstance(v, list) and v and isinstance(v[0], (dict, list)):
            inner = ",\n  ".join(dump(x) for x in v)
            lines.append(f"{dump(k)}:[\n  {inner}\n]{sep}")
        else:
            lines.append(f"{dump(k)}:{dump(v)}{sep}")
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    repo = Path(__file__).resolve().parents[2]
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models-dir", type=Path, default=Path("/work/models"))
    ap.add_argument("--out", type=Path, default=repo / "fixtures")
    ap.add_argument("--text", type=Path, default=repo / "fixtures" / "text" / "english.txt")
    ap.add_argument("--only", choices=sorted(MODELS), action="append")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for key in args.only or sorted(MODELS, reverse=True):
        run_model(key, args.models_dir, args.out, args.text)


if __name__ == "__main__":
    main()
