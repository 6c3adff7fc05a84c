#!/usr/bin/env bash
# One default training run alone on a lent GPU (after bench/gpu_session.sh's set-up lines): how fast the
# product's own command trains there with the GPU defaults (loader workers, pinned memory, bf16, tf32).
# Writes $OUT/one_run.log (every line time-stamped) and the run's metrics.json + trainer_state.json.
set -u -o pipefail
OUT=${OUT:-/tmp/gpu_out}; EPOCHS=${EPOCHS:-4}; LIMIT=${LIMIT:-75}
mkdir -p "$OUT"
export NO_ALBUMENTATIONS_UPDATE=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
if [ -z "${SKIP_WHEELS:-}" ] && ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
RUN=/tmp/one_run; [ -w /dev/shm ] && RUN=/dev/shm/one_run
rm -rf "$RUN"
timeout "$LIMIT" python3 train_hf.py --data "${DATA:-.gpudata/labelled.npz}" --output_dir "$RUN" --overwrite true \
  --num_train_epochs "$EPOCHS" --eval_strategy epoch --logging_steps 60 --disable_tqdm true \
  --report_to none ${RUN_ARGS:-} 2>&1 | while IFS= read -r line; do printf '%(%s)T %s\n' -1 "$line"; done | tee "$OUT/one_run.log"
cp "$RUN/metrics.json" "$OUT/one_run_metrics.json" 2>/dev/null
ls "$OUT"
