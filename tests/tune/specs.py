"""The tiny tune spec the tune tests share: embedded data, one epoch, a space over the pruning target."""

from pathlib import Path

import yaml


def tiny_spec(tmp_path: Path, lenient_device: Path, *, name: str = "tiny-tune", devices=("raspberry-pi-4",), space=None, trials: int = 3, quantize: bool = False) -> Path:
    profile = yaml.safe_load(lenient_device.read_text())
    profile["budgets"]["min_accuracy"] = 0.1  # one epoch of training on 540 images: within reach
    lenient_device.write_text(yaml.safe_dump(profile))
    raw = {
        "name": name, "seed": 0,
        "data": {"source": "embedded", "train_subset": 600, "test_subset": 300, "batch_size": 64},
        "model": {"name": "tiny_cnn", "kwargs": {"widths": [8, 8, 16, 16]}},
        "stages": [{"train": {"epochs": 1, "lr": 0.01}}, {"prune": {"target": {"keep_macs": 0.6}, "steps": 1, "finetune": {"epochs": 1}}},
                   {"export": {}}, *([{"quantize": {"calibration_samples": 64, "min_top1_agreement": 0.5}}] if quantize else []),
                   {"validate": {"runs": 20, "warmup": 2}}],
        "devices": [str(lenient_device), *devices],
        "tune": {"trials": trials, "seed": 0, "space": space or {"prune.target.keep_macs": {"float": [0.4, 0.9]}}},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
