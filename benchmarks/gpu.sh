#!/usr/bin/env bash
# Every GPU check and measurement the README names, on a machine with a CUDA GPU (CI has
# none, so none of this runs there). Each step's output goes to LOGDIR/<step>.log (default
# gpu-logs/), a line per step to LOGDIR/summary.txt, and a failing step does not stop the
# others. Name steps to run only those; by default all run, the ones that answer the GPU
# issue's targets first:
#
#   check        the fused kernel's and the collector's GPU tests, natively (a few minutes
#                at most: if the kernel is wrong here, the timings below measure a wrong kernel)
#   llama8b-32k  the collector on the Llama-3-8B shape at 32,768 tokens (time, peak memory)
#   kernels      block_mass and head_stats against flash, head_stats from 8k to 128k tokens
#   llama8b-4k   the collector on the Llama-3-8B shape at 4,096 tokens
#   smollm2-2k   the collector on the SmolLM2 shape at 2,048 tokens
#   tests        the rest of the kernel and collector tests, natively
#   window       head_stats of a sliding-window layer (band kernel) at 32k, W=1,024 and 4,096
#   gemma3-32k   the collector on the Gemma 3 4B shape (five sliding-window layers to one global) at 32k
#
#   [BUDGET=SECONDS] bash benchmarks/gpu.sh [LOGDIR [STEP...]]
#
# BUDGET caps the steps' time together (a lent machine's time is short: BUDGET=520 fits one
# 10-minute call with the set-up); each step then gets what is left, up to its own limit,
# and one that would get under 40 s is skipped and says so. Without BUDGET each step has its
# own limit (under 10 minutes).
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
# With the device tool: run(command="BUDGET=520 bash benchmarks/gpu.sh $OUT", carry=[".whl"],
# timeout_s=590).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-gpu-logs}
py=${PYTHON:-python3}
mkdir -p "$out"

budget=${BUDGET:-0}
t0=$SECONDS
# the tests the check step runs (the rest are the tests step's)
quick="gpu or fused or stacked or synchronises or flash"

step() {  # step NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    if [ "$budget" -gt 0 ]; then
        local left=$((budget - (SECONDS - t0)))
        if [ "$left" -lt 40 ]; then
            echo "$name: skipped, $left s of BUDGET=$budget left" | tee -a "$out/summary.txt"
            return
        fi
        [ "$left" -lt "$limit" ] && limit=$left
    fi
    echo "== $name (at most $limit s)"
    local start=$SECONDS
    PYTHONUNBUFFERED=1 timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    local how="exit $rc"
    [ "$rc" -eq 124 ] && how="stopped at its $limit s limit"
    echo "$name: $how after $((SECONDS - start)) s" >>"$out/summary.txt"
    echo "   $how after $((SECONDS - start)) s; last lines:"
    tail -n 12 "$out/$name.log" | sed 's/^/   /'
    echo
}

if compgen -G ".whl/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$py" -c "import torch, triton, transformers; print('torch', torch.__version__, 'triton', triton.__version__, 'transformers', transformers.__version__)"
"$py" -m pip install -q --no-deps --no-build-isolation -e . || exit 1

want=("${@:2}")
[ ${#want[@]} -eq 0 ] && want=(check llama8b-32k kernels llama8b-4k smollm2-2k tests window gemma3-32k)
ran_check=0
for name in "${want[@]}"; do
    [ "$name" = check ] && ran_check=1
done
tests=(tests/test_kernels.py tests/test_collectors.py)
for name in "${want[@]}"; do
    case $name in
        check) step check 240 "$py" -m pytest -q -p no:cacheprovider -rs "${tests[@]}" -k "$quick" ;;
        tests)
            if [ $ran_check -eq 1 ]; then
                step tests 580 "$py" -m pytest -q -p no:cacheprovider -rs "${tests[@]}" -k "not ($quick)"
            else
                step tests 580 "$py" -m pytest -q -p no:cacheprovider -rs "${tests[@]}"
            fi ;;
        kernels) step kernels 300 "$py" benchmarks/attention_kernels.py --gpu-only ;;
        smollm2-2k) step smollm2-2k 240 "$py" benchmarks/collector.py --device cuda --shape smollm2 --tokens 2048 --reps 3 ;;
        llama8b-4k) step llama8b-4k 240 "$py" benchmarks/collector.py --device cuda --shape llama8b --tokens 4096 --reps 3 ;;
        llama8b-32k) step llama8b-32k 300 "$py" benchmarks/collector.py --device cuda --shape llama8b --tokens 32768 --reps 2 --profile ;;
        window) step window 120 bash -c "\"$py\" benchmarks/attention_kernels.py --gpu-only --window 1024 --n 32768 --heads 32 --dim 128 && \"$py\" benchmarks/attention_kernels.py --gpu-only --window 4096 --n 32768 --heads 32 --dim 128" ;;
        gemma3-32k) step gemma3-32k 240 "$py" benchmarks/collector.py --device cuda --shape gemma3-4b --tokens 32768 --reps 2 ;;
        *) echo "unknown step $name (steps: check llama8b-32k kernels llama8b-4k smollm2-2k tests window gemma3-32k)"; exit 2 ;;
    esac
done
