#!/usr/bin/env bash
# The CUDA paths, checked on a machine with a GPU (CI has none, so nothing else runs them):
#   1. the test suite with every recipe test's training on the GPU (COMPRESS_TEST_ACCELERATOR=cuda);
#   2. the Fashion-MNIST recipe (shortened) with accelerator: cuda, end to end, timed per epoch;
#   3. more processes than GPUs: refused with a clear error before anything trains.
# Usage: bash benchmarks/cuda_check.sh [OUT] ; env WHEELS=folder of wheels to install first (a machine
# without a package index), COMPRESS_DATA=folder of the Fashion-MNIST IDX files.
set -u
out=${1:-${OUT:-/tmp/cuda-check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
if [ -n "${WHEELS:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
fi
{
    nvidia-smi -L
    python3 -c "import torch, onnxruntime; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'gpus', torch.cuda.device_count(), 'nccl', torch.cuda.nccl.version(), 'ort', onnxruntime.__version__)"
    nproc
} 2>&1 | tee "$out/env.txt"

echo "== 1. tests, training on CUDA"
workers=$(python3 -c "import xdist" 2>/dev/null && echo "-n ${WORKERS:-12}" || echo "")
COMPRESS_TEST_ACCELERATOR=cuda timeout "${TEST_LIMIT:-300}" python3 -m pytest -q -p no:cacheprovider $workers \
    --deselect tests/test_setup.py -rfE --junitxml "$out/junit.xml" >"$out/pytest.log" 2>&1
echo "pytest rc $?"
grep -E "^(FAILED|ERROR) |passed|failed" "$out/pytest.log" | tail -n 40
echo "-- kernels torch has no deterministic CUDA version of (from the tests):"
grep -o "[A-Za-z0-9_]* does not have a deterministic implementation" "$out/pytest.log" | sort | uniq -c

echo "== 2. Fashion-MNIST recipe on CUDA"
python3 - "$out" <<'EOF'
import sys, yaml
recipe = yaml.safe_load(open("recipes/fashion-mnist.yaml"))
recipe["accelerator"] = "cuda"
recipe["stages"][0]["train"]["epochs"] = 4
recipe["stages"][1]["prune"]["finetune"]["epochs"] = 1
recipe["devices"] = ["host"]
open("/tmp/fm-cuda.yaml", "w").write(yaml.safe_dump(recipe, sort_keys=False))
EOF
timeout "${RECIPE_LIMIT:-200}" python3 -m pipeline run /tmp/fm-cuda.yaml --out /tmp/fm-cuda >"$out/recipe.log" 2>&1
echo "recipe rc $?"
grep -v "it/s\]" "$out/recipe.log" | tail -n 30
cp /tmp/fm-cuda/report.json "$out/recipe-report.json" 2>/dev/null

echo "== 3. two processes on $(python3 -c 'import torch; print(torch.cuda.device_count())') GPU(s)"
timeout 120 python3 -m pipeline run /tmp/fm-cuda.yaml --out /tmp/fm-nproc --nproc 2 >"$out/nproc.log" 2>&1
echo "nproc rc $?"
tail -n 15 "$out/nproc.log"
