#!/usr/bin/env bash
# One short GPU window of the full profile (about 9 minutes on one H200), resumable across windows.
#   - MNIST comes from data/MNIST/raw, or gzipped from $CARRY/mnist (the travelling tree is limited);
#   - the previous window's output, if carried to $CARRY/prev, is resumed from;
#   - benchmarks/gpu_full.py times packed against unpacked training, then trains until its deadline
#     and writes summary.json, summary.txt, records.tar and checkpoints-*.tar to $OUT;
#   - everything printed goes to $OUT/log.txt.
# Usage (repo root): OUT=/some/dir bash benchmarks/gpu_full.sh [gpu_full.py options]
# Environment: CARRY (default .gpu-carry), BUDGET (seconds, default 540), HARD_LIMIT (default 575),
#   CUDA_TESTS=1 (run tests/test_train_cuda.py first, inside the same budget).
# See benchmarks/README.md for the whole round trip.
set -u
OUT=${OUT:-gpu-full-out}
CARRY=${CARRY:-.gpu-carry}
BUDGET=${BUDGET:-540}
HARD_LIMIT=${HARD_LIMIT:-575}
mkdir -p "$OUT"
LOG="$OUT/log.txt"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}

{
  echo "gpu_full.sh: $(date -u +%FT%TZ), budget ${BUDGET}s, hard limit ${HARD_LIMIT}s"
  git log -1 --format='commit %H %s' 2>/dev/null || echo "commit: unknown (no git)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "nvidia-smi: not available"
} >>"$LOG"

DATA_DIR=${STNLIB_DATA:-data}
if [ ! -f "$DATA_DIR/MNIST/raw/train-images-idx3-ubyte" ]; then
  if ls "$CARRY"/mnist/*.gz >/dev/null 2>&1; then
    mkdir -p "$DATA_DIR/MNIST/raw"
    for f in "$CARRY"/mnist/*.gz; do
      gunzip -c "$f" >"$DATA_DIR/MNIST/raw/$(basename "$f" .gz)" || echo "ERROR: could not unpack $f" >>"$LOG"
    done
    echo "MNIST unpacked from $CARRY/mnist" >>"$LOG"
  else
    echo "ERROR: no MNIST in $DATA_DIR/MNIST/raw nor $CARRY/mnist/*.gz (run gpu_full.py --prepare-carry here first)" \
      | tee -a "$LOG"
  fi
fi

PREV_ARGS=()
if [ -d "$CARRY/prev" ]; then PREV_ARGS=(--prev "$CARRY/prev"); fi

# CUDA_TESTS=1: first run tests/test_train_cuda.py (at most CUDA_TESTS_LIMIT s, taken off the budget);
# if they fail, train eagerly (packed, without CUDA graphs) rather than trust the graphed path.
GRAPH_ARGS=()
if [ "${CUDA_TESTS:-0}" = 1 ]; then
  t0=$(date +%s)
  timeout -k 10 "${CUDA_TESTS_LIMIT:-150}" "$PY" -m pytest -q -x -p no:cacheprovider tests/test_train_cuda.py \
    2>&1 | tee -a "$LOG"
  test_status=${PIPESTATUS[0]}
  used=$(( $(date +%s) - t0 ))
  BUDGET=$(( BUDGET - used )); HARD_LIMIT=$(( HARD_LIMIT - used ))
  if [ "$test_status" != 0 ]; then
    echo "CUDA tests failed (status $test_status): training without CUDA graphs" | tee -a "$LOG"
    GRAPH_ARGS=(--graphs off)
  fi
  echo "CUDA tests took ${used}s; budget now ${BUDGET}s" | tee -a "$LOG"
fi

# The Python deadline is the real one (it checkpoints and writes its output before BUDGET); timeout is
# the backstop: SIGINT first (the script still checkpoints), SIGKILL 15 s later.
set -o pipefail
timeout -k 15 -s INT "$HARD_LIMIT" "$PY" benchmarks/gpu_full.py --out "$OUT" --budget "$BUDGET" \
  ${PREV_ARGS[@]+"${PREV_ARGS[@]}"} ${GRAPH_ARGS[@]+"${GRAPH_ARGS[@]}"} "$@" 2>&1 | tee -a "$LOG"
status=$?
echo "gpu_full.sh: exit status $status" | tee -a "$LOG"
ls -la "$OUT" | tee -a "$LOG"
exit "$status"
