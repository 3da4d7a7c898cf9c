#!/usr/bin/env bash
# One-shot check of bgcube on a CUDA machine without network access.
#
# The machine has Python 3.12 with CuPy (for CUDA 13) and JAX (CUDA) already
# installed; bgcube's other dependencies come from a folder of wheels
# prepared beforehand on a machine with network (kept out of git, < 40 MiB):
#
#     benchmarks/gpu_check.sh --prepare-wheels        # here: fills benchmarks/gpu_wheels/
#
# then carry the checkout (with benchmarks/gpu_wheels/) to the GPU machine and run
#
#     benchmarks/gpu_check.sh [--out DIR]             # there: < 5 minutes
#
# What it does there: finds the GPU (nvidia-smi, CuPy, JAX); installs the
# wheels with pip --no-index --no-deps into DIR/site (nothing is resolved, so
# cupy-cuda12x is never pulled in and the machine's CuPy, JAX and NumPy stay
# as they are; bgcube itself runs from this checkout); runs the backend tests
# on CuPy and on JAX-GPU; runs benchmarks/bench_gpu.py (fill on the device,
# make-models per backend); writes everything to DIR (default
# gpu_check_results/<UTC time>): tests_cupy.txt, tests_jax.txt, bench_gpu.md,
# environment.txt, summary.txt.
#
#     benchmarks/gpu_check.sh --dry-run               # anywhere: checks and plan, installs nothing
#
# The dry run checks the Python version and the wheel folder, prints the
# commands it would run and looks for the GPU; without one it says so and
# stops (exit 0). A real run without a GPU stops there with exit 2.
set -u -o pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
WHEELS="$HERE/gpu_wheels"
OUT=""
DRY=0
PREPARE=0
PYTHON="${PYTHON:-python3}"
#: bgcube's dependencies that a CUDA image with CuPy and JAX lacks, and what the tests need
#: (about 17 MiB). Left out to stay under 40 MiB: numba/llvmlite (45 MiB; the NumPy kernel
#: is not what a GPU check is for), matplotlib and its dependencies (27 MiB; plots only),
#: scipy (37 MiB; a reference in two tests, which skip without it)
PACKAGES=(array-api-compat array-api-strict flatbuffers astropy pyerfa astropy-iers-data pyyaml packaging
          tqdm pytest pluggy iniconfig pygments hypothesis attrs sortedcontainers)
#: test modules that exercise the array backends (the rest is backend-independent)
TESTS=(tests/test_array_core.py tests/test_fill_exactness.py tests/test_cube.py
       tests/test_stream.py tests/test_precision.py tests/test_fill_events_public.py
       tests/test_device_chain.py tests/test_joint_model.py)

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --prepare-wheels) PREPARE=1 ;;
        --wheels) WHEELS="$2"; shift ;;
        --out) OUT="$2"; shift ;;
        -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
        *) echo "gpu_check: unknown option $1 (see --help)" >&2; exit 64 ;;
    esac
    shift
done
OUT="${OUT:-$REPO/gpu_check_results/$(date -u +%Y%m%dT%H%M%SZ)}"
say() { echo "gpu_check: $*"; }

if [ "$PREPARE" = 1 ]; then
    say "downloading wheels for CPython 3.12 manylinux x86_64 into $WHEELS"
    mkdir -p "$WHEELS"
    "$PYTHON" -m pip download --dest "$WHEELS" --no-deps --only-binary=:all: \
        --python-version 3.12 --implementation cp --abi cp312 \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux_2_28_x86_64 --platform any \
        "${PACKAGES[@]}" || exit 1
    size=$(du -sm "$WHEELS" | cut -f1)
    say "$(ls "$WHEELS" | wc -l) wheels, ${size} MiB"
    [ "$size" -lt 40 ] || { say "the wheel folder is ${size} MiB, over 40 MiB"; exit 1; }
    exit 0
fi

# --- checks that need no GPU -------------------------------------------------
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
say "python: $PYTHON ($pyver); repository: $REPO"
[ "$pyver" = "3.12" ] || say "note: the wheel folder is for Python 3.12, this is $pyver"
if [ -d "$WHEELS" ]; then
    say "wheels: $(ls "$WHEELS"/*.whl 2>/dev/null | wc -l) in $WHEELS ($(du -sm "$WHEELS" | cut -f1) MiB)"
else
    say "wheels: no folder $WHEELS (prepare it with --prepare-wheels where there is network)"
fi
say "plan: pip install --no-index --no-deps --target $OUT/site $WHEELS/*.whl"
say "plan: BGCUBE_BACKENDS=cupy BGCUBE_HYPOTHESIS_PROFILE=quick pytest ${TESTS[*]}"
say "plan: BGCUBE_BACKENDS=jax JAX_PLATFORMS=cuda BGCUBE_HYPOTHESIS_PROFILE=quick pytest ${TESTS[*]}"
say "plan: python benchmarks/bench_gpu.py --out $OUT"

# --- the GPU ---------------------------------------------------------------------
n_gpu=0
if command -v nvidia-smi >/dev/null 2>&1; then
    n_gpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
fi
cupy_gpus=$("$PYTHON" -c 'import cupy; print(cupy.cuda.runtime.getDeviceCount())' 2>/dev/null || echo 0)
jax_gpus=$("$PYTHON" -c 'import jax; print(len([d for d in jax.devices() if d.platform == "gpu"]))' 2>/dev/null || echo 0)
say "GPUs: nvidia-smi $n_gpu, CuPy $cupy_gpus, JAX $jax_gpus"
if [ "$n_gpu" = 0 ] && [ "$cupy_gpus" = 0 ] && [ "$jax_gpus" = 0 ]; then
    if [ "$DRY" = 1 ]; then
        say "no CUDA GPU found; dry run stops here"
        exit 0
    fi
    say "no CUDA GPU found; nothing to check"
    exit 2
fi
if [ "$DRY" = 1 ]; then
    say "GPU found; dry run stops here"
    exit 0
fi

# --- install, test, benchmark -------------------------------------------------------
mkdir -p "$OUT"
start=$(date +%s)
{
    nvidia-smi 2>&1 | head -20
    "$PYTHON" -c 'import numpy, cupy, jax; print("numpy", numpy.__version__, "cupy", cupy.__version__, "jax", jax.__version__)' 2>&1
} > "$OUT/environment.txt"
"$PYTHON" -m pip install --no-index --no-deps --target "$OUT/site" "$WHEELS"/*.whl \
    > "$OUT/pip.txt" 2>&1 || { say "pip install failed, see $OUT/pip.txt"; exit 1; }
export PYTHONPATH="$REPO:$OUT/site"
export JAX_ENABLE_X64=1 MPLBACKEND=Agg
cd "$REPO"
status=0
run_tests() {  # backend, extra environment
    local backend=$1; shift
    # the "quick" Hypothesis profile: fewer examples, so fewer array shapes to compile
    env BGCUBE_BACKENDS="$backend" BGCUBE_HYPOTHESIS_PROFILE=quick "$@" timeout 100 "$PYTHON" -m pytest -q -p no:cacheprovider \
        "${TESTS[@]}" > "$OUT/tests_$backend.txt" 2>&1
    local rc=$?
    say "tests on $backend: exit $rc, $(tail -1 "$OUT/tests_$backend.txt")"
    [ $rc = 0 ] || status=1
}
[ "$cupy_gpus" != 0 ] && run_tests cupy
[ "$jax_gpus" != 0 ] && run_tests jax JAX_PLATFORMS=cuda
timeout 150 "$PYTHON" benchmarks/bench_gpu.py --out "$OUT" > "$OUT/bench_gpu.txt" 2>&1 \
    || { say "bench_gpu failed or timed out, see $OUT/bench_gpu.txt"; status=1; }
say "done in $(( $(date +%s) - start )) s, results in $OUT" | tee "$OUT/summary.txt"
grep -h "tests on\|^|" "$OUT"/summary.txt "$OUT"/bench_gpu.md 2>/dev/null | tail -30
exit $status
