#!/usr/bin/env bash
# Installs the Debian packages nmformer needs, only those that are missing. Idempotent.
#   scripts/setup.sh           build + test + run dependencies
#   scripts/setup.sh --torch   also python3-torch (PyTorch comparisons and fixture generators)
#   scripts/setup.sh --fuzz    also clang + libFuzzer (tests/fuzz, make fuzz)
set -euo pipefail

packages=(build-essential cmake pkg-config libopenblas-dev libdnnl-dev libcjson-dev zlib1g-dev dataset-fashion-mnist
          # the byte-level LM's English text corpus (train --config lm): /usr/share/games/fortunes
          fortunes
          # OpenMPI: data-parallel training (optional in the build)
          libopenmpi-dev openmpi-bin
          # the Python package's tests (tests/python): numpy, and a venv that `pip install ./python`
          # builds offline (setuptools + wheel from Debian, no index)
          python3-numpy python3-venv python3-setuptools python3-wheel)
if [[ "${1:-}" == "--torch" ]]; then
  packages+=(python3-torch)
elif [[ "${1:-}" == "--fuzz" ]]; then
  packages+=(clang libclang-rt-14-dev libomp-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then sudo_cmd=(sudo); else
    echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
