#!/usr/bin/env bash
# The GPU check, one prepared call on a GPU machine (sized for 8 minutes on an H100 with 16 cores, `make setup`
# included):
# the tests marked `gpu`, then bench/gpu_check.py (extraction with bf16 and channels_last and what bounds it,
# host vs device data path training steps, faiss-gpu vs CPU retrieval). Everything goes to OUT/gpu_check.md
# (with the tests' log beside it); bench/README.md quotes it. On a machine without CUDA it runs the CPU parts
# and lists the GPU ones as skipped, with the reason; --quick shrinks every size for such a machine.
#
#   bench/gpu_check.sh [--quick] [OUT]     OUT defaults to bench/out/gpu_check (git-ignored)
#
# The Python used is GPU_CHECK_PYTHON (one with this project installed), else .venv/bin/python, made by
# `make setup` when missing.
set -uo pipefail
usage="usage: bench/gpu_check.sh [--quick] [OUT]"
quick=""
out=bench/out/gpu_check
outs=0
for arg in "$@"; do
    case $arg in
        --quick) quick=--quick ;;
        -h | --help) echo "$usage"; exit 0 ;;
        -*) echo "gpu_check.sh: unknown option $arg ($usage)" >&2; exit 2 ;;
        *) out=$arg; outs=$((outs + 1)) ;;
    esac
done
if [ "$outs" -gt 1 ]; then
    echo "gpu_check.sh: more than one output folder given ($usage)" >&2
    exit 2
fi
case $out in /*) ;; *) out=$PWD/$out ;; esac  # OUT is relative to where the script was called from
if [ -L "$out" ] || { [ -e "$out" ] && [ ! -d "$out" ]; }; then
    echo "gpu_check.sh: $out is not a folder (a file or a symbolic link); name a folder for the report" >&2
    exit 2
fi
cd "$(dirname "$0")/.." || exit 1
python=${GPU_CHECK_PYTHON:-.venv/bin/python}
if [ -z "${GPU_CHECK_PYTHON:-}" ] && [ ! -x "$python" ]; then
    make setup || { echo "gpu_check.sh: make setup failed (see above); or set GPU_CHECK_PYTHON" >&2; exit 1; }
fi
mkdir -p "$out" || exit 1
echo "gpu_check: tests marked gpu ..." >&2
"$python" -m pytest -q -rs -m gpu -p no:cacheprovider >"$out/gpu_tests.log" 2>&1
tests=$?
tail -n 1 "$out/gpu_tests.log" >&2
"$python" bench/gpu_check.py --out "$out" --tests-log "$out/gpu_tests.log" ${quick:+"$quick"}
check=$?
[ "$tests" -eq 0 ] || echo "gpu_check.sh: the gpu tests failed: $out/gpu_tests.log" >&2
[ "$tests" -eq 0 ] && [ "$check" -eq 0 ]
