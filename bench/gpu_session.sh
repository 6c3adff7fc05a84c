#!/usr/bin/env bash
# One call on a lent GPU machine (the library's device tool), prepared so that one try is enough:
#   - installs the wheels carried in .whl/ (packages the machine's image lacks: datasets, evaluate,
#     albumentations and their needs) into /tmp/site, and imports the package from the checkout;
#   - runs bench/gpu_sweep.py on the carried data file (.gpudata/labelled.npz: the shared file's labelled
#     tiles, the same frame-grouped split), run folders on /dev/shm (a checkpoint per epoch per run);
#   - brings back through $OUT: the sweep's JSON + md, its log, and a tarball of every run's log,
#     metrics.json, newest trainer_state.json and last plots.
# Before it: ``echo /.whl/ >> .git/info/exclude; echo /.gpudata/ >> .git/info/exclude``, the wheels downloaded
# for the machine's Python (docs/gpu.md lists them), the data file written; the call: device run with
# carry [".whl", ".gpudata"], command "bash bench/gpu_session.sh", timeout_s 595.
# Rehearse on a CPU: SKIP_WHEELS=1 OUT=/tmp/gpu_out BUDGET=100 ONE_RUN_S=30 COMPILE_S=0 \
#   SWEEP_ARGS="--epochs 1 --concurrent 2 --seeds 0" bash bench/gpu_session.sh
# MPS=1 tries CUDA's multi-process service for the shared runs (untried here; off unless a CUDA call works under it).
set -u -o pipefail
OUT=${OUT:-/tmp/gpu_out}
DATA=${DATA:-.gpudata/labelled.npz}
# seconds for each stage (0 skips one): the sweep's budget, one default run alone, torch.compile's probe; the model-
# only speeds of bench/gpu_speed.py are skipped unless SPEED=1 (measured once, bench/results/gpu_speed.json)
BUDGET=${BUDGET:-420}
ONE_RUN_S=${ONE_RUN_S:-50}
COMPILE_S=${COMPILE_S:-45}
SPEED=${SPEED:-0}
# run folders in memory where there is a writable /dev/shm (8 runs write a ~220 MB checkpoint every epoch)
if [ -z "${RUNS_DIR:-}" ]; then [ -d /dev/shm ] && [ -w /dev/shm ] && RUNS_DIR=/dev/shm/sweep || RUNS_DIR=/tmp/sweep; fi
mkdir -p "$OUT"
export NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1
if [ -z "${SKIP_WHEELS:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 3; }
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee -a "$OUT/sweep.log"
nproc | tee -a "$OUT/sweep.log"
python3 - <<'PY' 2>&1 | tee -a "$OUT/sweep.log"
import importlib.metadata as md, torch, datasets, albumentations, transformers, evaluate, mars_segformer  # noqa: F401
def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None
print({n: version(n) for n in ("torch", "transformers", "datasets", "accelerate", "timm", "albumentations", "pyarrow", "huggingface_hub", "numpy")})
print("cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
PY
[ $? = 0 ] || { echo "imports failed"; exit 4; }
# 0. MPS=1: the runs share the GPU through CUDA's multi-process service (kernels of several processes at once)
# instead of time slices. Never tried on these machines: kept only if a CUDA call works under it.
if [ "${MPS:-0}" = 1 ] && command -v nvidia-cuda-mps-control >/dev/null 2>&1; then
  export CUDA_MPS_PIPE_DIRECTORY=/tmp/mps_pipe CUDA_MPS_LOG_DIRECTORY=/tmp/mps_log
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if nvidia-cuda-mps-control -d && timeout 60 python3 -c "import torch; torch.zeros(1, device='cuda'); print('MPS on')" \
      2>&1 | tee -a "$OUT/sweep.log" | grep -q "MPS on"; then
    trap 'echo quit | nvidia-cuda-mps-control' EXIT
  else
    echo quit | nvidia-cuda-mps-control 2>/dev/null
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
    echo "MPS off: no CUDA under it" | tee -a "$OUT/sweep.log"
  fi
fi
# 1. one model alone on the idle device, no data loading: eager and channels-last
[ "$SPEED" = 1 ] && python3 bench/gpu_speed.py ${SPEED_ARGS:-} --out "$OUT/gpu_speed.json" 2>&1 | tail -20
# 1b. the product's own command alone (time-stamped log: seconds per epoch and per 60 steps)
[ "$ONE_RUN_S" -gt 0 ] && SKIP_WHEELS=1 LIMIT="$ONE_RUN_S" EPOCHS=3 OUT="$OUT" bash bench/gpu_one_run.sh > /dev/null 2>&1
# 2. the sweep
python3 bench/gpu_sweep.py --data "$DATA" --out "$RUNS_DIR" --budget_s "$BUDGET" ${SWEEP_ARGS:-} 2>&1 | tee -a "$OUT/sweep.log"
rc=$?
# 3. torch.compile of the default model, in what time is left (its compile time is its warmup_s)
[ "$COMPILE_S" -gt 0 ] && timeout "$COMPILE_S" python3 bench/gpu_speed.py --models upernet-r18-x1.5-h96 --batches 32 --compile ${SPEED_ARGS:-} \
  --out "$OUT/gpu_speed_compile.json" 2>&1 | tail -5
cp "$RUNS_DIR"/gpu_sweep.json "$RUNS_DIR"/gpu_sweep.md "$OUT"/ 2>/dev/null
(cd "$RUNS_DIR" && find . -maxdepth 1 -name "*.log" > /tmp/keep.txt
 for d in */; do
   d=${d%/}
   [ -f "$d/metrics.json" ] && echo "$d/metrics.json"
   [ -f "$d/run_args.json" ] && echo "$d/run_args.json"
   s=$(ls -d "$d"/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -1)
   [ -n "$s" ] && echo "$s/trainer_state.json"
   ls "$d"/plots/*.png 2>/dev/null | tail -2
 done >> /tmp/keep.txt
 tar czf "$OUT/runs.tar.gz" -T /tmp/keep.txt)
# a failed run's own words, for the reply's output tail
for f in "$RUNS_DIR"/*.log; do grep -q "Traceback\|Error" "$f" && { echo "== $f"; tail -15 "$f"; }; done
ls -la "$OUT"
exit $rc
