"""INT8 routes side by side: accuracy, size, INT8 coverage and latency of every quantize method and back end.

For each trained model (a run folder's `model.pt`), one recipe per variant runs export -> quantize ->
validate on the host profile: test accuracy on the 10 k Fashion-MNIST test set (onnxruntime), ONNX
size, compute ops running INT8 after onnxruntime's optimisation, p50/p90 at batch 1 on one thread,
and which file `validate`'s latency-aware choice ships. The FP32 row is the same run's FP32 file.

    python benchmarks/quantization.py [--models resnet20 resnet20-pruned tiny-pruned] [--out /tmp/compress-quant]

Needs the trained models: `bash benchmarks/run_recipes.sh fashion-mnist fashion-mnist-8m-macs fashion-mnist-16k`
(writes runs/<recipe>). Prints a markdown table
(docs/benchmarks.md holds the last output and its command).
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path


import runs  # benchmarks/runs.py, beside this script

RUNS = Path("runs")
DS_CNN_16K = {"stem": 16, "widths": [32, 48, 64, 112], "strides": [2, 1, 2, 1]}
MODELS = {  # short name: (zoo model, its kwargs, checkpoint, QAT epochs)
    "resnet20": ("resnet20", {}, RUNS / "fashion-mnist-8m-macs/02-self_distill/model.pt", 1),
    "resnet20-pruned": ("resnet20", {}, RUNS / "fashion-mnist-8m-macs/03-prune/model.pt", 2),
    "tiny-pruned": ("tiny_cnn", {}, RUNS / "fashion-mnist/02-prune/model.pt", 3),
    "ds-cnn-16k": ("ds_cnn", DS_CNN_16K, RUNS / "fashion-mnist-16k/02-self_distill/model.pt", 3),
    # the pruned tiny_cnn with one outlier channel (see with_outlier_channel): same FP32 function
    "tiny-pruned-outlier": ("tiny_cnn", {}, RUNS / "fashion-mnist/02-prune/model.pt", 3),
}
OUTLIER_FACTOR = 30.0


def with_outlier_channel(zoo: str, kwargs: dict, checkpoint: Path, out: Path) -> Path:
    """The same model with channel 0 of its first block scaled up by OUTLIER_FACTOR (BN gamma and
    beta, so the ReLU output scales) and the next conv's weights on that channel scaled down: the FP32
    function is unchanged, but one activation scale and one per-tensor weight scale must now cover a
    range 30x wider. Such imbalance is what cross-layer equalization (Nagel et al., 2019) removes;
    it is the case where plain PTQ loses points and accuracy-aware INT8 or QAT must recover them."""
    import torch

    from pipeline.core.checkpoints import save_model
    from pipeline.models import ModelConfig, build_model

    model = build_model(ModelConfig(name=zoo, kwargs=kwargs, checkpoint=str(checkpoint)), 1, 10)
    first_bn, second_conv = model.features[0][1], model.features[1][0]
    with torch.no_grad():
        first_bn.weight[0] *= OUTLIER_FACTOR
        first_bn.bias[0] *= OUTLIER_FACTOR
        second_conv.weight[:, 0] /= OUTLIER_FACTOR
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, out)
    return out


def variants(qat_epochs: int) -> dict[str, dict]:
    qat = {"train": {"epochs": qat_epochs, "lr": 1e-4, "schedule": "cosine"}, "distill": {"alpha": 0.5}}
    return {
        "static minmax": {},
        "static entropy": {"calibration": "entropy"},
        "static percentile": {"calibration": "percentile"},
        "static minmax, per-tensor weights": {"per_channel": False},
        "accuracy_aware (per-tensor, 0.3-point budget)": {"method": "accuracy_aware", "per_channel": False, "max_accuracy_drop": 0.3},
        "qat + distillation": {"method": "qat", "qat": qat},
        "neural-compressor static": {"backend": "neural-compressor"},
        "neural-compressor autotune (0.3-point budget)": {"backend": "neural-compressor", "method": "accuracy_aware", "max_accuracy_drop": 0.3},
    }


def recipe(name: str, model: str, kwargs: dict, checkpoint: Path, quantize: dict) -> dict:
    return {
        "name": name,
        "data": {"source": "fashion-mnist"},
        "model": {"name": model, "kwargs": kwargs, "checkpoint": str(checkpoint.resolve())},
        "stages": [{"export": {}}, {"quantize": {"min_top1_agreement": 0.5, **quantize}}, {"validate": {"runs": 1000}}],
        "devices": ["host"],
    }


def row(model: str, variant: str, figures: dict, coverage: str, shipped: str, seconds: float | str) -> str:
    latency = figures["host_latency_ms"]["1"] if "1" in figures["host_latency_ms"] else figures["host_latency_ms"][1]
    seconds = seconds if isinstance(seconds, str) else f"{seconds:.0f}"
    return (
        f"| {model} | {variant} | {figures['accuracy'] * 100:.2f} | {figures['size_bytes'] / 1024:.0f} | {coverage} | "
        f"{latency['p50'] * 1000:.0f} | {latency['p90'] * 1000:.0f} | {shipped} | {seconds} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--variants", nargs="*", default=None, help="subset of variant names (default: all)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/compress-quant"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print("| model | variant | test acc % | ONNX KiB | INT8 compute ops | p50 µs | p90 µs | host ships | quantize s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for short in args.models:
        zoo, kwargs, checkpoint, qat_epochs = MODELS[short]
        if not checkpoint.is_file():
            raise SystemExit(f"{checkpoint} is missing: run `bash benchmarks/run_recipes.sh fashion-mnist fashion-mnist-8m-macs fashion-mnist-16k` first")
        if short.endswith("-outlier"):
            checkpoint = with_outlier_channel(zoo, kwargs, checkpoint, args.out / f"{short}.pt")
        first = True
        for variant, settings in variants(qat_epochs).items():
            if args.variants and variant not in args.variants:
                continue
            name = f"{short}-{variant.split(' (')[0].replace(' ', '-').replace(',', '').replace('+', 'and')}"
            out = args.out / name
            try:
                done = runs.run(recipe(name, zoo, kwargs, checkpoint, settings), out)
            except runs.RunFailed as e:  # a route that fails is a result too
                print(f"| {short} | {variant} | failed: {str(e).strip().splitlines()[-1][:120]} | | | | | | |", flush=True)
                continue
            report = done.report()
            quantized, validated = done.metrics("quantize"), done.metrics("validate")
            seconds = done.stage_seconds("quantize")
            shipped = report["devices"]["host"]["artifact"].removeprefix("onnx_")
            if first:
                print(row(short, "FP32", validated["variants"]["onnx_fp32"], "–", "", "–"), flush=True)
                first = False
            cov = quantized["int8_coverage"]
            coverage = f"{cov['int8_compute_ops']}/{cov['int8_compute_ops'] + cov['fp32_compute_ops']}"
            aware = quantized.get("accuracy_aware")
            if aware:
                coverage += f" ({len(aware['fp32_nodes'])} kept FP32{'' if aware['budget_met'] else ', budget missed'})"
            print(row(short, variant, validated["variants"]["onnx_int8"], coverage, shipped, seconds), flush=True)


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
