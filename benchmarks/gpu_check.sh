#!/usr/bin/env bash
# The checks that need a GPU, as one script (about 9 minutes on one H200/H100):
#   1. the throughput benchmark on CUDA (stnlib vs the paper-style per-sample PIL pipeline);
#   2. a probe of the full profile (the paper's settings) on rotated MNIST, to time it;
#   3. calibration runs for the quick translated-MNIST schedule, several at once.
# Output: $OUT (or ./gpu-check) gets throughput.txt, full_probe.jsonl and calibrate.jsonl.
set -u
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/gpu.txt"

timeout 150 python3 benchmarks/throughput.py --device cuda 2>&1 | tee "$OUT/throughput.txt"

for model in cnn stn-c0 stn-sl1; do
  timeout 45 python3 benchmarks/calibrate.py mnist-rot "$model" --profile full --epochs 10 \
    --milestones 7 9 --device cuda >> "$OUT/full_probe.jsonl" 2>> "$OUT/errors.txt"
done

runs=(
  "cnn --epochs 10 --milestones 7 9"
  "stn-c0 --epochs 10 --milestones 7 9"
  "stn-c1 --epochs 10 --milestones 7 9"
  "stn-sl1 --epochs 10 --milestones 7 9"
  "stn-dl1 --epochs 10 --milestones 7 9"
  "stn-sl1 --epochs 6 --milestones 4 5"
  "stn-sl1 --epochs 6 --milestones 4 5 --seed 1"
  "stn-c0 --epochs 10 --milestones 7 9 --loc-lr 0.1"
  "stn-sl1 --epochs 10 --milestones 7 9 --loc-lr 0.1"
  "stn-dl1 --epochs 10 --milestones 7 9 --loc-lr 0.1"
  "stn-sl1 --epochs 10 --milestones 7 9 --seed 1"
  "stn-c0 --epochs 6 --milestones 4 5"
)
printf '%s\n' "${runs[@]}" | OMP_NUM_THREADS=1 timeout 230 xargs -P 12 -I{} sh -c \
  "python3 benchmarks/calibrate.py mnist-trans {} --device cuda >> '$OUT/calibrate.jsonl' 2>> '$OUT/errors.txt'"
echo "done"; tail -5 "$OUT/errors.txt" 2>/dev/null
