#!/usr/bin/env python3
"""Tiny random-weight MoE / MLA Hugging Face folders with golden logits: `glm4_moe_lite`
(GLM-4.7-Flash's architecture: MLA with q_lora, sigmoid routing with correction bias, shared
expert, dense layer 0), `deepseek_v3` (MLA without q_lora, group-limited routing) and
`qwen3_moe` (softmax top-k routing, dense layer via mlp_only_layers).

Same layout and golden format as `make_tiny_models.py` (whose tokenizer, prompts and golden
maker this reuses): `fixtures/tiny/<name>/{config.json, model.safetensors (bf16),
tokenizer.json, tokenizer_config.json, golden.json}`. On top of the logit top-1 margin, every
routing decision (k-th vs (k+1)-th expert choice score, and the kept vs dropped expert group)
of every golden forward must be separated by at least MIN_ROUTE_GAP, so an f32 implementation
cannot pick a different expert; the weight seed is re-drawn otherwise (recorded as
`weight_seed`). The correction bias (a buffer, not a parameter) is drawn too, so selection and
weighting differ.

Usage (under a minute on 2 cores):
  nice /opt/refenv/bin/python scripts/reference/make_tiny_moe_models.py [--out fixtures/tiny]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import zlib
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_tiny_models as base  # noqa: E402

MIN_ROUTE_GAP = 1e-3
MAX_SEEDS = 40


def specs() -> dict[str, dict]:
    common = {
        "vocab_size": base.VOCAB,
        "hidden_size": base.HIDDEN,
        "intermediate_size": base.INTER,
        "bos_token_id": base.BOS,
        "eos_token_id": base.IM_END,
        "pad_token_id": base.PAD,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "initializer_range": 0.02,
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
        "attention_bias": False,
    }
    mla = {
        "num_hidden_layers": 3,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "kv_lora_rank": 32,
        "qk_nope_head_dim": 16,
        "qk_rope_head_dim": 8,
        "v_head_dim": 12,
        "moe_intermediate_size": 16,
        "n_routed_experts": 8,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "norm_topk_prob": True,
        "rope_interleave": True,
        "first_k_dense_replace": 1,
    }
    return {
        "glm4_moe_lite": {
            **common,
            **mla,
            "architectures": ["Glm4MoeLiteForCausalLM"],
            "model_type": "glm4_moe_lite",
            "q_lora_rank": 24,
            "n_group": 1,
            "topk_group": 1,
            "routed_scaling_factor": 1.8,
            "rms_norm_eps": 1e-5,
            "rope_theta": 1000000.0,
            "rope_scaling": None,
        },
        "deepseek_v3": {
            **common,
            **mla,
            "architectures": ["DeepseekV3ForCausalLM"],
            "model_type": "deepseek_v3",
            "q_lora_rank": None,
            "n_group": 2,
            "topk_group": 1,
            "routed_scaling_factor": 2.5,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "rope_scaling": None,
        },
        "qwen3_moe": {
            **common,
            "architectures": ["Qwen3MoeForCausalLM"],
            "model_type": "qwen3_moe",
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "head_dim": 16,
            "moe_intermediate_size": 16,
            "num_experts": 8,
            "num_experts_per_tok": 2,
            "norm_topk_prob": True,
            "decoder_sparse_step": 1,
            "mlp_only_layers": [0],
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_scaling": None,
            "use_sliding_window": False,
            "sliding_window": None,
        },
    }


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Seeded noise for every parameter and the routers' correction bias."""
    base.randomize(model, seed, gemma=False)
    with torch.no_grad():
        for name, buf in sorted(model.named_buffers()):
            if name.endswith("e_score_correction_bias"):
                gen = torch.Generator().manual_seed(seed * 7_919 + zlib.crc32(name.encode()))
                buf.copy_(torch.randn(buf.shape, generator=gen) * 0.2)


class RouteGap:
    """Forward hooks on every router recording the smallest selection margin seen."""

    def __init__(self, model: torch.nn.Module, cfg: dict):
        self.min_gap = float("inf")
        self.cfg = cfg
        self.handles = []
        for name, mod in model.named_modules():
            if name.endswith("mlp.gate") and hasattr(mod, "weight"):
                self.handles.append(mod.register_forward_hook(self.hook))

    def hook(self, mod, args, out):
        logits = out[0].float()
        k = self.cfg["num_experts_per_tok"]
        if self.cfg["model_type"] == "qwen3_moe":
            choice = torch.softmax(logits, dim=-1)
        else:
            choice = torch.sigmoid(logits) + mod.e_score_correction_bias
            n_group, topk_group = self.cfg["n_group"], self.cfg["topk_group"]
            if n_group > 1:
                groups = choice.view(-1, n_group, choice.shape[-1] // n_group)
                gscore = groups.topk(2, dim=-1)[0].sum(-1).sort(dim=-1, descending=True)[0]
                gap = (gscore[:, topk_group - 1] - gscore[:, topk_group]).min()
                self.min_gap = min(self.min_gap, float(gap))
                keep = torch.zeros_like(gscore)
                idx = groups.topk(2, dim=-1)[0].sum(-1).topk(topk_group, dim=-1)[1]
                keep.scatter_(1, idx, 1)
                mask = keep.unsqueeze(-1).expand_as(groups).reshape(choice.shape).bool()
                choice = choice.masked_fill(~mask, float("-inf"))
        top = choice.sort(dim=-1, descending=True)[0]
        gap = (top[:, k - 1] - top[:, k]).min()
        self.min_gap = min(self.min_gap, float(gap))

    def close(self):
        for h in self.handles:
            h.remove()


def build(name: str, cfg: dict, tok, out: Path) -> None:
    folder = out / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (folder / "tokenizer_config.json").write_text(
        json.dumps(base.tokenizer_config(), indent=2) + "\n"
    )
    tok.save(str(folder / "tokenizer.json"), pretty=False)
    config = transformers.AutoConfig.from_pretrained(folder)
    for attempt in range(MAX_SEEDS):
        seed = 100 + attempt
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        randomize(model, seed)
        with tempfile.TemporaryDirectory() as tmp:
            model.to(torch.bfloat16).save_pretrained(tmp, safe_serialization=True)
            shutil.copy(Path(tmp) / "model.safetensors", folder / "model.safetensors")
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        model.eval()
        gaps = RouteGap(model, cfg)
        try:
            golden = base.make_golden(model, tok)
        except SystemExit as e:
            print(f"{name}: seed {seed}: {e}")
            gaps.close()
            continue
        gaps.close()
        if gaps.min_gap >= MIN_ROUTE_GAP:
            break
        print(f"{name}: seed {seed}: routing gap {gaps.min_gap:.2e}, re-drawing")
    else:
        raise SystemExit(f"{name}: no seed gives clear routing")
    golden["model"] = name
    golden["weight_seed"] = seed
    golden["min_route_gap"] = base.sig(gaps.min_gap)
    (folder / "golden.json").write_text(json.dumps(golden, separators=(",", ":")) + "\n")
    size = sum(f.stat().st_size for f in folder.iterdir())
    print(
        f"{name}: {size} bytes, seed {seed}, min top-1 gap {golden['min_top1_gap']}, "
        f"min routing gap {golden['min_route_gap']}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = Path(__file__).resolve().parents[2]
    ap.add_argument("--out", type=Path, default=root / "fixtures" / "tiny")
    ap.add_argument("--only", help="build just this config")
    args = ap.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    tok = base.train_tokenizer()
    for name, cfg in specs().items():
        if args.only and name != args.only:
            continue
        build(name, cfg, tok, args.out)


if __name__ == "__main__":
    main()
