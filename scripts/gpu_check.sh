#!/usr/bin/env bash
# GPU checks of gen3d, for a machine with an NVIDIA GPU, nvcc and a CUDA build of torch (not part of `make test`,
# which runs on CPUs): builds the native extension with its CUDA twins, runs every test marked `cuda`, the
# rendering benchmark on the GPU, and the fast test suite with the GPU visible.
#
# Usage: bash scripts/gpu_check.sh [OUT_DIR]      (default runs/gpu_check; logs and a summary are written there)
# Environment: PYTHON (default python3), CUDA_TESTS (where the `cuda` tests are collected, default tests; e.g.
# tests/renderers for the kernels alone), BENCH=0 to skip the benchmark, SUITE=0 to skip the last step,
# SUITE_TIMEOUT (seconds for the last step, default 150), XDIST_WORKERS.
# nerfacc, the benchmark's peer, is installed from a wheel in .whl/ when one is there (on a machine without network:
# `pip download --no-deps -d .whl nerfacc==0.5.3` beforehand); it builds its CUDA extension on first use.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-runs/gpu_check}
PY=${PYTHON:-python3}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-150}
XDIST_WORKERS=${XDIST_WORKERS:-8}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1 GEN3D_QUIET=1
SUMMARY="$OUT_DIR/summary.txt"
: >"$SUMMARY"
step() { echo; echo "=== $1 ($(date +%T))"; }
record() { echo "$1: rc=$2" | tee -a "$SUMMARY"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 | tee "$OUT_DIR/gpu.txt"
"$PY" -c "import torch, lightning; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'lightning', lightning.__version__, 'gpu', torch.cuda.get_device_name())" 2>&1 | tee -a "$OUT_DIR/gpu.txt"
nvcc --version | tail -1 | tee -a "$OUT_DIR/gpu.txt"

step "build renderers_ops with the CUDA twins"
"$PY" - <<'EOF' 2>&1 | tee "$OUT_DIR/build.log"
import time

t = time.perf_counter()
from renderers.native import load_extension
from renderers.ops._backend import CPU_SOURCES, CUDA_SOURCES

module = load_extension("renderers_ops", CPU_SOURCES, CUDA_SOURCES, verbose=True)
assert module is not None, "the build failed"
print(f"renderers_ops built in {time.perf_counter() - t:.1f} s; with_cuda={module.with_cuda()}")
assert module.with_cuda(), "built without the CUDA kernels"
EOF
record "build" "${PIPESTATUS[0]}"

step "tests marked cuda"
# shellcheck disable=SC2086
"$PY" -m pytest -m cuda -p no:cacheprovider -q -rfE --continue-on-collection-errors ${CUDA_TESTS:-tests} 2>&1 \
    | tee "$OUT_DIR/pytest_cuda.log"
record "pytest -m cuda" "${PIPESTATUS[0]}"
tail -1 "$OUT_DIR/pytest_cuda.log" >>"$SUMMARY"

step "bench_render on the GPU"
[ "${BENCH:-1}" = 0 ] && echo "skipped (BENCH=0)"
if [ "${BENCH:-1}" != 0 ] && compgen -G ".whl/nerfacc-*.whl" >/dev/null; then
    SITE=$(mktemp -d)
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/nerfacc-*.whl \
        && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
[ "${BENCH:-1}" = 0 ] || for args in "--scenes 64 --rays 4096" "--scenes 64 --rays 16384"; do
    # shellcheck disable=SC2086
    "$PY" scripts/bench_render.py --device cuda --repeats 10 $args 2>&1 | tee -a "$OUT_DIR/bench_render_cuda.log"
    record "bench_render $args" "${PIPESTATUS[0]}"
done

step "fast suite with the GPU visible (timeout ${SUITE_TIMEOUT}s)"
if [ "${SUITE:-1}" = 0 ]; then
    echo "skipped (SUITE=0)"
else
    timeout "$SUITE_TIMEOUT" "$PY" -m pytest -m "not slow" -p no:cacheprovider -q -rfE --continue-on-collection-errors \
        -n "$XDIST_WORKERS" tests/renderers tests/metrics tests/diffusion tests/models tests/lit 2>&1 \
        | tee "$OUT_DIR/pytest_suite.log"
    record "pytest suite" "${PIPESTATUS[0]}"
    tail -1 "$OUT_DIR/pytest_suite.log" >>"$SUMMARY"
fi

step "summary"
cat "$SUMMARY"
grep -sE "^(raymarch|composite|device|nerfacc)" "$OUT_DIR/bench_render_cuda.log"
