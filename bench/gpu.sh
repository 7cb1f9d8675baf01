#!/usr/bin/env bash
# Issue 21's GPU figures in two device calls of under 10 minutes each (the device tool's limit),
# run from the repository root on a machine with JAX (CUDA), Flax, PyTorch and transformers and
# none of the stack. Each step prints its figures; the JSON of each lands in $OUT.
#   bash bench/gpu.sh check   # seconds: the scripts run on this machine (tiny model)
#   bash bench/gpu.sh engine  # ~8 min: TTFT, batch 1, 16/64/256 streams, multi-LoRA (gather and
#                             #   dense) at 64 adapters, all beside transformers' generate
#   bash bench/gpu.sh more    # ~8 min: bf16 against f32, cold and warm start, the LoRA step
set -euo pipefail
OUT=${OUT:-$(mktemp -d)}
export OUT PYTHONPATH=.
keep() { [ -f "$OUT/$1" ] && mv "$OUT/$1" "$OUT/$2" || true; }
case "${1:-check}" in
check)
  python -m bench.engine_random --tiny --ttft-runs 3 && keep engine_random.json engine_tiny.json
  python -m bench.start --tiny && keep start.json start_tiny.json
  ;;
engine)
  python -m bench.engine_random --lora-impl gather,dense --ttft-runs 10
  keep engine_random.json engine_f32.json
  ;;
more)
  python -m bench.engine_random --dtype bfloat16 --lora-streams 0 --no-baseline --ttft-runs 5
  keep engine_random.json engine_bf16.json
  python -m bench.start --adapter-slots 0 && keep start.json start_base.json
  python -m bench.lora_step --rows 64 || true
  ;;
*) echo "usage: bash bench/gpu.sh check|engine|more" >&2; exit 2 ;;
esac
echo "figures in $OUT"
