#!/usr/bin/env bash
# Quality/speed table of the metal-marlin formats on SmolLM2-135M (README "Quantization").
#
# Base = the SmolLM2-135M-Instruct Q4_1 GGUF converted to an f16 HF folder. Every row is
# quantized from that base, then compared with it on fixtures/text/english.txt (512-token
# windows, second half scored): perplexity, mean KL(base ‖ quant), top-1 agreement; CPU
# decode tok/s from `metal-marlin bench`. GPTQ/MR-GPTQ and trellis calibrate on other text,
# never on the eval text: by default 256 windows of 256 tokens of $OUT/calib.txt, which
# interleaves ~2 KB chunks of fixtures/text/smollm2-generated.txt (text sampled from the
# model itself) with Debian's licence texts (/usr/share/common-licenses), 101k tokens in all.
# CALIB=/usr/share/common-licenses/GPL-3 SAMPLES=16 is the older calibration (GPL-3 alone).
#
# Embeddings and the tied LM head stay F16 unless PRESET is set (PRESET=dense: int8 g128,
# which roughly doubles CPU decode speed). ONLY="fp4-rtn int4-gptq" runs some rows.
# Trellis rows calibrate too (LDLQ on the same Hessians); their Viterbi search is the slow
# part (about 200-300 tiles/s on 2 cores: ~30 min a row for SmolLM2's 415k tiles).
#
# Usage: scripts/quality-table.sh [OUTDIR]   (needs a release build: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/metal-marlin}
GGUF=${GGUF:-$HOME/.cache/metal-marlin/models/SmolLM2-135M-Instruct.Q4_1.gguf}
TEXT=fixtures/text/english.txt
OUT=${1:-/tmp/mm-quality}
CALIB=${CALIB:-$OUT/calib.txt}
SAMPLES=${SAMPLES:-256}
SEQ=${SEQ:-256}
PRESET=${PRESET:-}
EXTRA=()
[ -n "$PRESET" ] && EXTRA=(--mixed-precision "$PRESET")
mkdir -p "$OUT"
if [ "$CALIB" = "$OUT/calib.txt" ] && [ ! -f "$CALIB" ]; then
  python3 - fixtures/text/smollm2-generated.txt "$CALIB" <<'PY'
import sys
lic = '/usr/share/common-licenses/'
names = ['Apache-2.0', 'Artistic', 'BSD', 'CC0-1.0', 'GFDL-1.2', 'GFDL-1.3', 'GPL-1', 'GPL-2',
         'GPL-3', 'LGPL-2', 'LGPL-2.1', 'LGPL-3', 'MPL-1.1', 'MPL-2.0']
def chunks(s, n=2000):
    out, cur = [], ''
    for p in s.split('\n\n'):
        cur += p + '\n\n'
        if len(cur) >= n:
            out.append(cur)
            cur = ''
    return out + ([cur] if cur else [])
gen = chunks(open(sys.argv[1]).read().split('\n\n', 1)[1])
lics = chunks(''.join(open(lic + n).read() for n in names))
mix = [c for i in range(max(len(gen), len(lics))) for c in (gen[i:i + 1] + lics[i:i + 1])]
open(sys.argv[2], 'w').write(''.join(mix))
PY
fi
BASE=$OUT/base-f16
[ -d "$BASE" ] || "$BIN" convert --model "$GGUF" --out "$BASE" --dtype f16 >/dev/null

# name | quantize arguments
ROWS=(
  "fp4-rtn|--format fp4 --group-size 128 --method rtn"
  "fp4-mrgptq|--format fp4 --group-size 128 --method mr-gptq"
  "mxfp4-rtn|--format mxfp4 --method rtn"
  "mxfp4-mrgptq|--format mxfp4 --method mr-gptq"
  "nvfp4-rtn|--format nvfp4 --method rtn"
  "nvfp4-mrgptq|--format nvfp4 --method mr-gptq"
  "int4-rtn|--format int4 --group-size 128 --method rtn"
  "int4-gptq|--format int4 --group-size 128 --method gptq"
  "int3-rtn|--format int3z --group-size 128 --method rtn"
  "int3-gptq|--format int3z --group-size 128 --method gptq"
  "int2-rtn|--format int2z --group-size 64 --method rtn"
  "int2-gptq|--format int2z --group-size 64 --method gptq"
  "int8-rtn|--format int8 --group-size 128 --method rtn"
  "fp8-rtn|--format fp8 --method rtn"
  "trellis2|--format trellis --bits 2"
  "trellis3|--format trellis --bits 3"
  "trellis4|--format trellis --bits 4"
)
ONLY=${ONLY:-}
printf '| %-13s | %-11s | %7s | %7s | %8s | %10s | %8s | %8s | %8s |\n' \
  model format bpw_lin bpw_all size_MB perplexity mean_KL top1_% tok/s
for row in "base|" "${ROWS[@]}"; do
  name=${row%%|*}; args=${row#*|}
  if [ -n "$ONLY" ] && [[ ! " $ONLY " =~ " $name " ]]; then continue; fi
  dir=$OUT/$name
  if [ "$name" = base ]; then
    dir=$BASE; fmt=f16; bpw_lin=16; bpw_all=16
  else
    if [ ! -d "$dir" ]; then
      # shellcheck disable=SC2086
      "$BIN" quantize --model "$BASE" --out "$dir" $args "${EXTRA[@]}" --calibration "$CALIB" \
        --samples "$SAMPLES" --seq-len "$SEQ" --json > "$OUT/$name.quant.json"
    fi
    read -r fmt bpw_lin bpw_all < <(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); \
f=[t['format'] for t in d['tensors'] if t['rel_error'] is not None]; \
print(max(set(f), key=f.count), round(d['bpw_quantized'],3), round(d['bpw_all'],3))" "$OUT/$name.quant.json")
  fi
  size=$(du -sb "$dir" | awk '{printf "%.1f", $1/1e6}')
  kl=$("$BIN" eval kl --model "$dir" --reference "$BASE" --file "$TEXT" --ctx 512 --device cpu --json)
  tps=$("$BIN" bench --model "$dir" --device cpu --prompt-len 32 --gen-len 32 --repeats 1 \
        | python3 -c "import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); \
print(round(d.get('decode_tok_s', d.get('decode', {}).get('tok_s', 0)), 1))" 2>/dev/null || echo "?")
  python3 - "$name" "$fmt" "$bpw_lin" "$bpw_all" "$size" "$tps" "$kl" <<'PY'
import json, sys
name, fmt, bl, ba, size, tps, kl = sys.argv[1:]
k = json.loads(kl)
print(f"| {name:<13} | {fmt:<11} | {bl:>7} | {ba:>7} | {size:>8} | {k['perplexity']:>10.3f} | "
      f"{k['mean_kl']:>8.4f} | {100*k['top1_agreement']:>8.2f} | {tps:>8} |")
PY
done
