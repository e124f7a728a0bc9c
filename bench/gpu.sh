#!/usr/bin/env bash
# Every benchmark on a CUDA machine, in bf16 and through torch.compile, printed as one table.
# Sized to finish in under 8 minutes on an H100 (the timeout below enforces it; progress lines
# are printed as each figure lands, so a cut-off run still shows what it measured).
#
#   bash bench/gpu.sh             # on a machine with a CUDA GPU
#   bash bench/gpu.sh --dry-run   # anywhere: the same scripts and code paths (bf16 autocast,
#                                 # inductor compile) on the CPU at smoke size; figures mean nothing
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--dry-run" ]]; then
  exec python bench/all.py --quick --device cpu --precision bf16 --set train.compile=true
fi
if ! python -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
  echo "bench/gpu.sh: torch sees no CUDA device; run with --dry-run to check the scripts on a CPU" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
exec timeout 480 python bench/all.py --device cuda --precision bf16 --set train.compile=true
