#!/usr/bin/env python3
"""Tiny random-weight Hugging Face folders with golden logits, for architectures that have no
small real model in this project.

For each config below this writes `fixtures/tiny/<name>/` holding
  config.json            written by hand in the style of the Hugging Face Hub (legacy
                         `rope_theta`/`rope_scaling` keys; `mistral` uses the transformers-5
                         `rope_parameters` form instead, so loaders see both)
  model.safetensors      random weights, stored as bfloat16 (size budget), via save_pretrained
  tokenizer.json         one tiny byte-level BPE tokenizer shared by all folders
  tokenizer_config.json  bos/eos tokens and a ChatML chat_template
  golden.json            3 prompts (token ids), full f32 logits at every position (6 significant
                         digits), and the greedy 8-token continuation of prompt 0

The golden values come from the folder as transformers reads it back (`from_pretrained` with
dtype float32, so bf16 weights are widened exactly), under `model.eval()` and `torch.no_grad()`.
The script checks that `generate(do_sample=False)` equals a plain argmax loop over full
forwards, that no end-of-sequence token stops the continuation, and that every position's top-1
beats the runner-up by a margin far larger than f32 noise (prompts are re-drawn otherwise).

Deterministic: fixed seeds; rerunning reproduces identical files.

Usage (well under a minute on 2 cores):
  nice /opt/refenv/bin/python scripts/reference/make_tiny_models.py [--out fixtures/tiny]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import zlib
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoModelForCausalLM

VOCAB = 320
HIDDEN = 64
INTER = 96
GREEDY_TOKENS = 8
MIN_TOP1_GAP = 2e-3  # f32 implementations differ by ~1e-5; a tie would make top-1 ambiguous
SIG_DIGITS = 6
MIN_DISTINCT = 3  # distinct tokens wanted in the greedy continuation (not one repeated token)

SPECIALS = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
PAD, BOS, EOS_S, IM_START, IM_END = range(5)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

TEXT = """\
The old lighthouse stood at the edge of the cliff, and every evening the keeper climbed its
narrow stairs to light the lamp. Ships passing in the night saw the beam sweep across the water
and knew that the rocks were near. The keeper wrote in his log the weather, the wind, and the
names of the ships that passed.

In the town below, the baker opened his shop before dawn. He mixed flour, water, salt and yeast,
and the smell of fresh bread drifted down the street. Children on their way to school stopped at
the window to look at the cakes, the buns and the long loaves cooling on the racks.

A small program reads numbers from a file, adds them together and prints the total. If the file
is empty, the program prints zero. If a line cannot be read as a number, the program reports the
line and stops. Tests check the total for 1, 2, 3 and 10, 20, 30, and for an empty file.

The river runs from the mountains to the sea. In spring the snow melts and the water rises; in
summer the river is slow and warm, and people swim in the deep pools under the trees. Farmers
along the banks grow wheat, apples and grapes, and sell them at the market on Saturday.

User: What is the capital of France? Assistant: The capital of France is Paris, a city on the
river Seine, famous for its museums, its cafes and the tower built for the fair of 1889.
"""

# Prompt sources; each yields candidate token windows (prompt 0 gets a leading BOS).
PROMPT_TEXTS = [
    ("bos_english", "The keeper climbed the narrow stairs every evening to light the lamp for ships"),
    ("plain_code", "If the file is empty, the program prints zero and the total of 1, 2, 3 is six."),
    ("chat", "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"),
]
PROMPT_LENS = [12, 13, 14]


def norm_weight(gemma: bool, final: bool, shape, gen) -> torch.Tensor:
    """Random norm weights: Gemma stores w with scale (1 + w); others store the scale itself.
    Gemma's final norm gets w around 1 (scale around 2) to spread its small tied-embedding logits."""
    noise = torch.randn(shape, generator=gen) * 0.3
    if gemma:
        return noise + 1.0 if final else noise
    return 1.0 + noise


# name -> (architectures[0], config.json contents beyond the shared keys, n_layers, tied,
#          gemma-style norms)
def specs() -> dict[str, dict]:
    common = {
        "vocab_size": VOCAB,
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "bos_token_id": BOS,
        "eos_token_id": IM_END,
        "pad_token_id": PAD,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
    }
    return {
        "llama": {
            **common,
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "num_hidden_layers": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "rope_scaling": None,
            "attention_bias": False,
            "mlp_bias": False,
            "tie_word_embeddings": False,
        },
        "llama3": {
            **common,
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "num_hidden_layers": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-5,
            "rope_theta": 10000.0,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
            "attention_bias": False,
            "mlp_bias": False,
            "tie_word_embeddings": True,
        },
        "mistral": {
            **common,
            "architectures": ["MistralForCausalLM"],
            "model_type": "mistral",
            "num_hidden_layers": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-5,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
            "sliding_window": 4096,
            "head_dim": None,
            "tie_word_embeddings": True,
        },
        "qwen2": {
            **common,
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "num_hidden_layers": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_scaling": None,
            # Hub Qwen configs carry a sliding_window that is OFF unless use_sliding_window; the
            # small value here makes a loader that applies it anyway fail the golden test.
            "use_sliding_window": False,
            "sliding_window": 4,
            "max_window_layers": 1,
            "tie_word_embeddings": False,
        },
        "qwen3": {
            **common,
            "architectures": ["Qwen3ForCausalLM"],
            "model_type": "qwen3",
            "num_hidden_layers": 2,
            "head_dim": 32,
            "hidden_act": "silu",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_scaling": None,
            "attention_bias": False,
            "use_sliding_window": False,
            "sliding_window": 4,
            "max_window_layers": 1,
            "tie_word_embeddings": True,
        },
        "gemma3": {
            **common,
            "architectures": ["Gemma3ForCausalLM"],
            "model_type": "gemma3_text",
            "num_hidden_layers": 4,
            "head_dim": 16,
            "hidden_activation": "gelu_pytorch_tanh",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_local_base_freq": 10000.0,
            "rope_scaling": None,
            "query_pre_attn_scalar": 24,
            "sliding_window": 8,
            "sliding_window_pattern": 3,
            "layer_types": [
                "sliding_attention",
                "sliding_attention",
                "full_attention",
                "sliding_attention",
            ],
            "attention_bias": False,
            "attn_logit_softcapping": None,
            "final_logit_softcapping": None,
            "tie_word_embeddings": True,
        },
    }


def train_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TEXT.split("\n\n"), trainer=trainer)
    if tok.get_vocab_size() != VOCAB:
        raise SystemExit(f"tokenizer has {tok.get_vocab_size()} tokens, wanted {VOCAB}")
    return tok


def tokenizer_config() -> dict:
    return {
        "bos_token": SPECIALS[BOS],
        "eos_token": SPECIALS[IM_END],
        "pad_token": SPECIALS[PAD],
        "unk_token": None,
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": 512,
        "clean_up_tokenization_spaces": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "chat_template": CHAT_TEMPLATE,
    }


def randomize(model: torch.nn.Module, seed: int, gemma: bool) -> None:
    """Overwrite every parameter with seeded normal noise (std chosen per kind of tensor)."""
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
            if "norm" in name:
                p.copy_(norm_weight(gemma, name == "model.norm.weight", p.shape, gen))
            elif name.endswith(".bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
            elif "embed_tokens" in name:
                # Gemma multiplies embeddings by sqrt(hidden) = 8; a smaller std keeps the residual
                # from being all embedding (a tied model then just repeats its last token).
                p.copy_(torch.randn(p.shape, generator=gen) * (0.08 if gemma else 0.3))
            elif "lm_head" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
            else:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.15)


def sig(x: float) -> float:
    return float(f"{x:.{SIG_DIGITS}g}")


def top1_gap(row: torch.Tensor) -> float:
    top = torch.topk(row, 2).values
    return float(top[0] - top[1])


@torch.no_grad()
def full_logits(model, ids: list[int]) -> torch.Tensor:
    return model(torch.tensor([ids])).logits[0].float()


@torch.no_grad()
def argmax_loop(model, ids: list[int], n: int) -> tuple[list[int], float]:
    seq, gaps = list(ids), []
    for _ in range(n):
        row = full_logits(model, seq)[-1]
        gaps.append(top1_gap(row))
        seq.append(int(row.argmax()))
    return seq[len(ids) :], min(gaps)


def prompt_candidates(tok: Tokenizer, idx: int):
    """Token windows for prompt `idx`, first the text's start, then shifted by one token."""
    _, text = PROMPT_TEXTS[idx]
    ids = tok.encode(text).ids
    n = PROMPT_LENS[idx]
    if idx == 0:
        n -= 1
    for shift in range(0, len(ids) - n + 1):
        window = ids[shift : shift + n]
        yield ([BOS] + window) if idx == 0 else window
    raise SystemExit(f"prompt {idx}: no window has a clear top-1 at every position")


@torch.no_grad()
def make_golden(model, tok: Tokenizer) -> dict:
    prompts, min_gap = [], float("inf")
    for idx in range(len(PROMPT_TEXTS)):
        for ids in prompt_candidates(tok, idx):
            logits = full_logits(model, ids)
            gaps = [top1_gap(r) for r in logits]
            if idx == 0:
                cont, cont_gap = argmax_loop(model, ids, GREEDY_TOKENS)
                gaps.append(cont_gap)
                if any(t < len(SPECIALS) for t in cont) or len(set(cont)) < MIN_DISTINCT:
                    continue
            if min(gaps) >= MIN_TOP1_GAP:
                break
        min_gap = min(min_gap, min(gaps))
        prompts.append(
            {
                "name": PROMPT_TEXTS[idx][0],
                "ids": ids,
                "logits": [[sig(v) for v in row.tolist()] for row in logits],
            }
        )
        if idx == 0:
            gen = model.generate(
                torch.tensor([ids]),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                do_sample=False,
                max_new_tokens=GREEDY_TOKENS,
                pad_token_id=PAD,
            )[0, len(ids) :].tolist()
            if gen != cont:
                raise SystemExit(f"generate() {gen} differs from the argmax loop {cont}")
            greedy = {"prompt": 0, "max_new_tokens": GREEDY_TOKENS, "tokens": cont}
    return {
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "dtype": "float32 compute, bfloat16 weights",
        "min_top1_gap": sig(min_gap),
        "prompts": prompts,
        "greedy": greedy,
    }


def build(name: str, cfg: dict, seed: int, tok: Tokenizer, out: Path) -> None:
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    config = transformers.AutoConfig.from_pretrained(folder)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    randomize(model, seed, gemma=cfg["model_type"].startswith("gemma"))
    with tempfile.TemporaryDirectory() as tmp:
        model.to(torch.bfloat16).save_pretrained(tmp, safe_serialization=True)
        shutil.copy(Path(tmp) / "model.safetensors", folder / "model.safetensors")
    tok.save(str(folder / "tokenizer.json"), pretty=False)
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config(), indent=2) + "\n")

    # The golden comes from the folder as transformers reads it back.
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    model.eval()
    golden = make_golden(model, tok)
    golden["model"] = name
    golden["layer_types"] = getattr(model.config, "layer_types", None)
    (folder / "golden.json").write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    size = sum(f.stat().st_size for f in folder.iterdir())
    print(f"{name}: {size} bytes, min top-1 gap {golden['min_top1_gap']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = Path(__file__).resolve().parents[2]
    ap.add_argument("--out", type=Path, default=root / "fixtures" / "tiny")
    ap.add_argument("--only", help="build just this config")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    tok = train_tokenizer()
    for seed, (name, cfg) in enumerate(specs().items(), start=1):
        if args.only and name != args.only:
            continue
        build(name, cfg, seed, tok, args.out)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
