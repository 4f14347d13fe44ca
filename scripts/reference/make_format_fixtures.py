#!/usr/bin/env python3
"""Make bit-exact dequantize/quantize fixtures for marlin-core's GGML formats with gguf-py.

gguf-py (`gguf.quants`, numpy) is an implementation independent of ours. For every format it
can dequantize we write deterministic random blocks and its output; for every format it can
quantize we write random f32 input and its packed bytes.

Run with the reference venv:  /opt/refenv/bin/python scripts/reference/make_format_fixtures.py
Output (crates/core/tests/fixtures/formats/):
  <name>.in   raw blocks          <name>.out   gguf-py dequantized values (f32 LE)
  <name>.qin  f32 LE input        <name>.qout  gguf-py quantized bytes
  manifest.json  what was made, with element counts, the seed and the gguf version
"""

import importlib.metadata
import json
import pathlib

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

SEED = 20240611
OUT = pathlib.Path(__file__).resolve().parents[2] / "crates/core/tests/fixtures/formats"

# name -> (qtype, elements per block, bytes per block, byte offsets of f16 scale fields)
DEQUANT = {
    "f32": (T.F32, 1, 4, []),
    "f16": (T.F16, 1, 2, []),
    "bf16": (T.BF16, 1, 2, []),
    "q4_0": (T.Q4_0, 32, 18, [0]),
    "q4_1": (T.Q4_1, 32, 20, [0, 2]),
    "q5_0": (T.Q5_0, 32, 22, [0]),
    "q5_1": (T.Q5_1, 32, 24, [0, 2]),
    "q8_0": (T.Q8_0, 32, 34, [0]),
    "q2_k": (T.Q2_K, 256, 84, [80, 82]),
    "q3_k": (T.Q3_K, 256, 110, [108]),
    "q4_k": (T.Q4_K, 256, 144, [0, 2]),
    "q5_k": (T.Q5_K, 256, 176, [0, 2]),
    "q6_k": (T.Q6_K, 256, 210, [208]),
    "iq4_nl": (T.IQ4_NL, 32, 18, [0]),
    "iq4_xs": (T.IQ4_XS, 256, 136, [0]),
    "mxfp4": (T.MXFP4, 32, 17, []),
}
QUANT = {
    "f16": T.F16,
    "bf16": T.BF16,
    "q4_0": T.Q4_0,
    "q4_1": T.Q4_1,
    "q5_0": T.Q5_0,
    "q5_1": T.Q5_1,
    "q8_0": T.Q8_0,
    "mxfp4": T.MXFP4,
}
ELEMS = 512  # target elements per dequant fixture (at least 4 blocks)


def random_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite f16 values over many magnitudes, both signs, some zeros and subnormals."""
    mags = 10.0 ** rng.uniform(-7, 2, n)
    s = (rng.standard_normal(n) * mags).astype(np.float16)
    s[rng.random(n) < 0.05] = 0
    assert np.isfinite(s).all()
    return s


def dequant_case(rng, name, qtype, block_elems, block_bytes, scale_offsets):
    n_blocks = max(ELEMS // block_elems, 4)
    blocks = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    for off in scale_offsets:
        blocks[:, off:off + 2] = random_scales(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    out = quants.dequantize(blocks.reshape(-1), qtype).astype(np.float32, copy=False)
    assert out.size == n_blocks * block_elems, name
    blocks.tofile(OUT / f"{name}.in")
    out.astype("<f4").tofile(OUT / f"{name}.out")
    return {"format": name, "kind": "dequantize", "elements": int(out.size),
            "bytes": int(blocks.size)}


def quant_input(rng, name) -> np.ndarray:
    """256 values: blocks of 32 at different scales, a zero block, a constant block."""
    x = rng.standard_normal(256).astype(np.float32)
    x *= np.repeat(10.0 ** rng.uniform(-4, 3, 8), 32).astype(np.float32)
    x[32:64] = 0
    x[64:96] = np.float32(-1.25)
    x[100] = np.float32(7.5)  # a clear outlier
    if name in ("f16", "bf16"):
        x[:8] = [np.inf, -np.inf, 1e6, -1e-9, 6e-8, -0.0, 65520.0, 65519.0]
    if name == "bf16":
        x[8:10] = [np.float32(np.nan), np.uint32(0xFF800001).view(np.float32)]
    return x


def quant_case(rng, name, qtype):
    x = quant_input(rng, name)
    with np.errstate(over="ignore"):  # f16 overflow to inf is part of the test
        q = np.asarray(quants.quantize(x, qtype)).view(np.uint8).reshape(-1)
    x.astype("<f4").tofile(OUT / f"{name}.qin")
    q.tofile(OUT / f"{name}.qout")
    return {"format": name, "kind": "quantize", "elements": int(x.size), "bytes": int(q.size)}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    cases = [dequant_case(rng, name, *spec) for name, spec in DEQUANT.items()]
    cases += [quant_case(rng, name, qtype) for name, qtype in QUANT.items()]
    manifest = {
        "generator": "scripts/reference/make_format_fixtures.py",
        "gguf_version": importlib.metadata.version("gguf"),
        "numpy_version": np.__version__,
        "seed": SEED,
        "cases": cases,
    }
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(cases)} cases, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
