#!/usr/bin/env bash
# What the GPU check (../shared/gpu) does not run, run after it on the same machine from the project's root, with .whl/
# and .devdata/ carried: the suite's GPU tests (`pytest -m gpu`: every shipped recipe trains, validates, checkpoints,
# resumes and exports on the GPU in its precision and in bf16-mixed, with no step waiting for the GPU; pytest's wheels
# come from scripts/gpu_test_wheels.sh), compiled `cse fit` (whole-run speed, validation share, the throughput of each
# 50-step window, the seconds of each validation, a wiki1m epoch projected from them), a worker's batch in one storage
# against one per tensor with pinned memory, the compiled benchmark, the checkpoint writers, and the eager benchmark with
# sentence-transformers' trainer side by side in one process. Parts: tests fit workers bench ckpt compare (default
# all, about 9 min on an H100). Log: $OUT/followup.log. FIT_STEPS, TESTS_S, FIT_S, WORKERS_S, BENCH_S, CKPT_S,
# COMPARE_S change the steps and time limits; TESTS_K selects GPU tests by name (pytest -k).
set -uo pipefail
OUT=${OUT:-/tmp/followup_out}; mkdir -p "$OUT"; exec > >(tee "$OUT/followup.log") 2>&1
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled TOKENIZERS_PARALLELISM=false
export PYTHONPATH=$PWD:/tmp/site:$PWD/scripts
python3 -c "import datasets, jsonargparse" 2>/dev/null ||
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
[ -f .devdata/model/model.safetensors ] || python3 .devdata/make_model.py .devdata/model || exit 1
git log -1 --format='cse commit %h'
parts=" ${*:-tests fit workers bench ckpt compare} "; want() { [[ "$parts" == *" $1 "* ]]; }
if want tests; then
echo "=== pytest -m gpu: every recipe, clipping with the fused AdamW, GradCache, validation and similarities on the GPU ($(date +%T))"
python3 -c "import pytest" 2>/dev/null || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
  --target /tmp/site .whl/pytest-*.whl .whl/pluggy-*.whl .whl/iniconfig-*.whl .whl/pygments-*.whl
# The modules with GPU tests (their device lists come from tests/devices.py) only: others import what the image may lack
timeout ${TESTS_S:-300} python3 -m pytest -q -p no:cacheprovider -m gpu ${TESTS_K:+-k "$TESTS_K"} $(grep -rlE --include='test_*.py' '\b(ON_CUDA|CPU_AND_CUDA)\b' tests)
echo "RESULT gpu_tests rc=$?"
fi
if want fit; then
echo "=== compiled cse fit, bf16-mixed, reduce-overhead, 1000 steps, dev every 125 ($(date +%T))"
s=$(date +%s.%N)
timeout ${FIT_S:-170} python3 -m cse fit --config configs/unsup-simcse-bert-base.yaml --model.model_name_or_path .devdata/model \
  --model.compile reduce-overhead --trainer.precision bf16-mixed --data.train_file .devdata/wiki_sentences_11914.txt \
  --data.dev_file .devdata/sts-dev.csv --trainer.max_epochs -1 --trainer.max_steps ${FIT_STEPS:-1000} \
  --trainer.logger.init_args.save_dir /tmp/fu_runs; rc=$?
echo "RESULT compiled_fit rc=$rc wall_s=$(python3 -c "import time; print(round(time.time()-$s, 1))")"
python3 - <<'PY'
import csv, glob
for path in sorted(glob.glob("/tmp/fu_runs/**/metrics.csv", recursive=True))[-1:]:
    rows = list(csv.DictReader(open(path)))
    print(path)
    for row in rows:
        keep = {k: v for k, v in row.items() if v and k in ("step", "train/steps_per_sec", "val/stsb_spearman", "val/seconds")}
        if len(keep) > 1: print(keep)
PY
m=$(ls -t /tmp/fu_runs/*/version_*/metrics.csv 2>/dev/null | head -1)
[ -n "$m" ] && python3 scripts/epoch_projection.py "$m"  # a wiki1m epoch (15,625 steps, dev every 125) from this run
fi
if want workers; then
echo "=== a worker's batch: one storage per tensor or per dtype, pinned memory ($(date +%T))"
timeout ${WORKERS_S:-60} python3 scripts/worker_batches.py --model .devdata/model --batches 200 --rounds 3
echo "RESULT worker_batches rc=$?"
fi
if want bench; then
echo "=== compiled benchmark, bf16-mixed ($(date +%T))"
timeout ${BENCH_S:-150} python3 scripts/benchmark.py --model .devdata/model --device cuda --precision bf16-mixed \
  --compile reduce-overhead --steps 200 --batch-size 64 --max-seq-length 32
echo "RESULT compiled_bench rc=$?"
fi
if want ckpt; then
echo "=== checkpoint writers ($(date +%T))"
timeout ${CKPT_S:-60} python3 scripts/checkpoint_writes.py --model .devdata/model --device cuda
echo "RESULT ckpt_writes rc=$?"
fi
if want compare; then
echo "=== eager benchmark, 16-mixed, with sentence-transformers' trainer in the same process ($(date +%T))"
timeout ${COMPARE_S:-150} python3 scripts/benchmark.py --model .devdata/model --device cuda --precision 16-mixed \
  --steps 200 --batch-size 64 --max-seq-length 32 --compare-sentence-transformers
echo "RESULT compare_st rc=$?"
fi
echo "=== done ($(date +%T))"; grep '^RESULT' "$OUT/followup.log"
