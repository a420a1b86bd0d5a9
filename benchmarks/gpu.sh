#!/usr/bin/env bash
# Every GPU check and measurement the README names, in one go, on a machine with a CUDA GPU
# (CI has none, so none of this runs there). Each step's output goes to LOGDIR/<step>.log
# (default gpu-logs/) and a failing step does not stop the others. Name steps to run only
# those (each ends within 10 minutes): tests kernels smollm2-2k llama8b-4k llama8b-32k.
#
#   bash benchmarks/gpu.sh [LOGDIR [STEP...]]
#
# Needs torch with CUDA, triton, transformers, pyarrow, polars, rich and typer importable by
# $PYTHON (default python3); the project is installed editable without its dependencies
# (offline). On a machine without network that lacks some (polars), download their wheels
# into .whl/ (ignored) beforehand: they are installed into a temporary folder put on
# PYTHONPATH. For the lent H200 (Python 3.12, no polars, no pytest-asyncio) polars 1.33.1 is
# the one that fits: polars 2's runtime wheel alone (54 MB) and this tree (12 MB) pass the
# 64 MiB a call may carry. The tests pass with it (checked on the CPU):
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_17_x86_64 -d .whl \
#     polars==1.33.1 pytest==9.2.0 pytest-asyncio==1.5.0 pytest-timeout==2.4.0 \
#     pluggy==1.7.0 iniconfig==2.3.1
# Steps: the kernel and collector tests natively (the GPU-only ones included), head_stats
# against flash from 8k to 128k, and the collector at the issue's three shapes.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-logs}
py=${PYTHON:-python3}
mkdir -p "$out"

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    local start=$SECONDS
    PYTHONUNBUFFERED=1 timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "   exit $rc after $((SECONDS - start)) s; last lines:"
    tail -n 12 "$out/$name.log" | sed 's/^/   /'
}

if compgen -G ".whl/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)"
"$py" -m pip install -q --no-deps --no-build-isolation -e . || exit 1

want=("${@:2}")
[ ${#want[@]} -eq 0 ] && want=(tests kernels smollm2-2k llama8b-4k llama8b-32k)
for name in "${want[@]}"; do
    case $name in
        tests) step tests 580 "$py" -m pytest -q -p no:cacheprovider -rs tests/test_kernels.py tests/test_collectors.py ;;
        kernels) step kernels 580 "$py" benchmarks/kernels.py --gpu-only ;;
        smollm2-2k) step smollm2-2k 580 "$py" benchmarks/collector.py --device cuda --shape smollm2 --tokens 2048 --reps 3 ;;
        llama8b-4k) step llama8b-4k 580 "$py" benchmarks/collector.py --device cuda --shape llama8b --tokens 4096 --reps 3 ;;
        llama8b-32k) step llama8b-32k 580 "$py" benchmarks/collector.py --device cuda --shape llama8b --tokens 32768 --reps 2 ;;
        *) echo "unknown step $name"; exit 2 ;;
    esac
done
