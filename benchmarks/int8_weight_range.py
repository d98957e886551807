"""INT8 with 7-bit against 8-bit weights (`quantize.reduce_range`), on this x86 host and on Arm.

    python benchmarks/int8_weight_range.py runs/fashion-mnist-16k [runs/quickstart ...] [--samples 1000]

For each finished run: its FP32 ONNX file is quantized statically (QDQ, U8 activations, minmax
calibration on 512 training images, per-tensor and per-channel S8 weights) with 7-bit and with
full 8-bit weights, through the pipeline's own INT8 back end (`quantization/ort_backend.py`). Every
file then predicts the first N test images of the run's data, in ONNX Runtime on this host and in
ONNX Runtime's aarch64 build under qemu-user (the emulated Arm board's Python, built by
`tests/boards/arm64_root.sh`): accuracy, and agreement with the FP32 file's predictions on the
same platform. Nothing is chosen here; it says where 8-bit weights are safe. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.core.run_folder import RunFolder  # noqa: E402
from pipeline.data import load_data  # noqa: E402
from pipeline.quantization.ort_backend import StaticSettings, prepare, quantize_static_file  # noqa: E402
from pipeline.recipe import parse_recipe  # noqa: E402

ARM_PYTHON = Path("/var/cache/edge-compress/arm64/python")
PREDICT = """
import json, sys, numpy as np, onnxruntime as ort
x = np.load(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = s.get_inputs()[0].name
    out[path] = np.concatenate([s.run(None, {name: x[i:i + 64]})[0].argmax(1) for i in range(0, len(x), 64)]).tolist()
print(json.dumps(out))
"""


def predictions(python: list[str], inputs: Path, files: list[Path], script: Path) -> dict[str, np.ndarray]:
    done = subprocess.run([*python, str(script), str(inputs), *map(str, files)], capture_output=True, text=True, timeout=3600)
    if done.returncode:
        raise SystemExit(f"{python[0]} failed: {done.stderr[-2000:]}")
    return {Path(k).name: np.array(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args(argv)
    print("| run | weights | per | host (x86) acc | host agreement with FP32 | Arm (qemu) acc | Arm agreement with FP32 | Arm agreement with x86 |")
    print("|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        recipe = parse_recipe(json.loads((run / "recipe.json").read_text()), str(run))
        data = load_data(recipe.header.data, recipe.header.seed)
        fp32 = RunFolder(run).stage_of("export").path / "model.onnx"
        with tempfile.TemporaryDirectory(prefix="weight-range-") as tmp:
            tmp = Path(tmp)
            test_x, test_y = data.test.take(args.samples)
            inputs, labels = tmp / "inputs.npy", test_y.numpy()
            np.save(inputs, np.ascontiguousarray(test_x.numpy(), dtype=np.float32))
            calibration = data.train.take(512)[0].numpy().astype(np.float32)
            prepared = prepare(fp32, tmp / "prepared.onnx")
            files = {("fp32", ""): fp32}
            for per_channel in (False, True):
                for reduce_range in (True, False):
                    out = tmp / f"int8-{'channel' if per_channel else 'tensor'}-{'7' if reduce_range else '8'}bit.onnx"
                    quantize_static_file(prepared, out, calibration, StaticSettings(per_channel=per_channel, reduce_range=reduce_range))
                    files[("7-bit" if reduce_range else "8-bit", "channel" if per_channel else "tensor")] = out
            script = tmp / "predict.py"
            script.write_text(PREDICT)
            host = predictions([sys.executable], inputs, list(files.values()), script)
            arm = predictions([str(ARM_PYTHON)], inputs, list(files.values()), script)
            for (weights, per), path in files.items():
                if weights == "fp32":
                    continue
                h, a = host[path.name], arm[path.name]
                print(f"| {run.name} | {weights} | {per} | {(h == labels).mean():.4f} | {(h == host[fp32.name]).mean():.4f} | "
                      f"{(a == labels).mean():.4f} | {(a == arm[fp32.name]).mean():.4f} | {(a == h).mean():.4f} |", flush=True)
            print(f"| {run.name} | FP32 | – | {(host[fp32.name] == labels).mean():.4f} | – | {(arm[fp32.name] == labels).mean():.4f} | – | "
                  f"{(arm[fp32.name] == host[fp32.name]).mean():.4f} |", flush=True)


if __name__ == "__main__":
    main()
