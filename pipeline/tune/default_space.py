"""The spec of the one-line form, `compress tune --model M --data SOURCE[:PATH] --device D … --time 2h`:
a recipe every model can run (train, prune with recovery, export to every runtime the devices admit,
INT8, validate) and a space over what hand-tuning decides: how long and how fast to train, how much
to prune and how long to recover, which INT8 route. Which runtime each device gets is not searched:
validate already gives each device the fastest file that meets its budgets among its runtimes.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.core.errors import UserError
from pipeline.tune.model_budget import count, with_model_budget

SPACE = {
    "train.epochs": {"int": [5, 30]},
    "train.lr": {"float": [0.002, 0.05], "log": True},
    "prune.target.keep_macs": {"float": [0.25, 0.9]},
    "prune.finetune.epochs": {"int": [1, 5]},
    "quantize.method": {"choice": ["static", "accuracy_aware"]},
}


def default_spec(model: str, data: dict, devices: list[str], trials: int | None, time: str | None, seed: int = 0,
                 max_macs: int | None = None, max_params: int | None = None) -> dict:
    """The spec as YAML-ready data; `model` is a zoo name or "package.module:function"."""
    if not devices:
        raise UserError("--device: name at least one device (a profile name or .yaml path): the study scores what each would ship")
    model_entry = {"factory": model} if ":" in model else {"name": model}
    name = f"tune-{Path(model.split(':')[-1]).name}"
    spec = {
        "name": name,
        "seed": seed,
        "data": data,
        "model": model_entry,
        "stages": [
            {"train": {"epochs": 15, "lr": 0.01}},
            {"prune": {"target": {"keep_macs": 0.6}, "steps": 2, "finetune": {"epochs": 2, "lr": 0.002}}},
            {"export": {"runtimes": "auto"}},
            {"quantize": {}},
            {"validate": {}},
        ],
        "devices": list(devices),
        "tune": {"seed": seed, "space": dict(SPACE), **({"trials": trials} if trials else {}), **({"time": time} if time else {})},
    }
    return with_model_budget(spec, max_macs, max_params)


def write_default_spec(model: str | None, data: str | None, devices: tuple[str, ...], trials: int | None, time: str | None,
                       out_dir: str | None, max_macs: str | None = None, max_params: str | None = None) -> tuple[str, str]:
    """The one-line form's spec, written into the tune folder (a second run reads it back and resumes);
    returns (the spec's path, the tune folder)."""
    import yaml

    from pipeline.external import DataSpec, data_config

    if not (model and data):
        raise UserError("without SPEC, give --model (a zoo name or package.module:function), --data SOURCE[:PATH] and --device")
    raw = default_spec(model, data_config(DataSpec(data)).model_dump(exclude_unset=True), list(devices), trials, time,
                       max_macs=None if max_macs is None else count(max_macs, "--max-macs"),
                       max_params=None if max_params is None else count(max_params, "--max-params"))
    out = Path(out_dir or Path("runs") / f"{raw['name']}-tune")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "spec.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return str(path), str(out)
