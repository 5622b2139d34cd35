#!/usr/bin/env bash
# Optional: the venv that bench/model_vs_peers.py uses for the dense peers that Debian does not
# package. Never needed by `make test`. Idempotent: a second run installs nothing.
#   bench/setup_peers.sh            -> .venv-peers/ in the repository root
#   NMF_PEERS_VENV=DIR bench/setup_peers.sh
# The venv sees Debian's torch and numpy (--system-site-packages) and adds, from PyPI:
#   onnxruntime (required by the "ort" and "ort-int8" peers), onnx (the ONNX exporter's checker),
#   openvino (optional: if it does not install here, the "openvino" peers are skipped), and nncf
#   (optional: OpenVINO's quantizer, for the "openvino-int8" peer).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${NMF_PEERS_VENV:-$root/.venv-peers}"
system_python=/usr/bin/python3

if [[ ! -x "$venv/bin/python" ]]; then
  echo "setup_peers: creating $venv" >&2
  "$system_python" -m venv --system-site-packages "$venv"
fi
py="$venv/bin/python"

# Debian's torch is built against Debian's numpy: a wheel that pulled a newer numpy into the venv
# would shadow it and break `import torch`, so every install is constrained to the numpy we have.
numpy_version="$("$py" -c 'import numpy; print(numpy.__version__)')"
constraints="$venv/constraints.txt"
echo "numpy==$numpy_version" > "$constraints"

have() { "$py" -c "import $1" 2>/dev/null; }
# found, not imported: NNCF cannot be imported beside Debian's torch 1.13 (model_vs_peers.py runs
# it in a process without torch)
found() { "$py" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)"; }
install() { "$py" -m pip install --quiet --disable-pip-version-check -c "$constraints" "$@"; }

for module in onnxruntime onnx; do
  if ! have "$module"; then
    echo "setup_peers: installing $module" >&2
    install "$module"
  fi
done
if ! have openvino; then
  echo "setup_peers: installing openvino (optional)" >&2
  install openvino || echo "setup_peers: openvino did not install; model_vs_peers.py will skip it" >&2
fi
if have openvino && ! found nncf; then
  echo "setup_peers: installing nncf (optional)" >&2
  install nncf || echo "setup_peers: nncf did not install; model_vs_peers.py will skip openvino-int8" >&2
fi

"$py" - <<'PY'
import importlib
for name in ("torch", "numpy", "onnxruntime", "onnx", "openvino"):
    try:
        m = importlib.import_module(name)
        print(f"setup_peers: {name} {getattr(m, '__version__', '?')}")
    except Exception as e:  # a missing optional peer is reported, not fatal
        print(f"setup_peers: {name} not available ({type(e).__name__})")
from importlib import metadata
try:
    print(f"setup_peers: nncf {metadata.version('nncf')} (imported by model_vs_peers.py without torch)")
except metadata.PackageNotFoundError:
    print("setup_peers: nncf not available")
PY
echo "setup_peers: /usr/bin/python3 bench/model_vs_peers.py runs its peers under $py" >&2
