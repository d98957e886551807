"""ModelState: the one thing that flows from stage to stage."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from torch import nn

from devices.on_device.runtimes import RUNNERS

# artifact kinds a device can be given: {format}_{precision}; the format names the runtime that runs it
RUNTIME_OF_FORMAT = {runner.artifact_format: runtime for runtime, runner in RUNNERS.items()}
FORMAT_OF_RUNTIME = {runtime: fmt for fmt, runtime in RUNTIME_OF_FORMAT.items()}
DEPLOYABLE = tuple(f"{fmt}_{precision}" for fmt in RUNTIME_OF_FORMAT for precision in ("fp32", "int8"))
WIDTH_MARK = "@w"  # a nested width's file: onnx_fp32@w0.5 is the FP32 file of the network at half width


def width_artifact(kind: str, width: float) -> str:
    return kind if width == 1 else f"{kind}{WIDTH_MARK}{width:g}"


def artifact_kind(name: str) -> str:
    return name.split(WIDTH_MARK)[0]


def artifact_width(name: str) -> float:
    """The share of channels the file's network keeps (1 for a file that is not a nested width)."""
    return float(name.split(WIDTH_MARK)[1]) if WIDTH_MARK in name else 1.0


def runtime_artifact(runtime: str, precision: str, width: float = 1) -> str:
    """The artifact name of a runtime's file: ("executorch", "int8", 0.5) -> executorch_int8@w0.5."""
    return width_artifact(f"{FORMAT_OF_RUNTIME[runtime]}_{precision}", width)


def artifact_runtime(name: str) -> str:
    return RUNTIME_OF_FORMAT[artifact_kind(name).rsplit("_", 1)[0]]


def deployable(artifacts: dict) -> dict:
    """The files a device could be given (every runtime, FP32 and INT8, every nested width), not early-exit files."""
    return {name: ref for name, ref in artifacts.items() if artifact_kind(name) in DEPLOYABLE}


@dataclass
class ModelState:
    """The current model and everything later stages need to know about how it got here.

    `artifacts` maps a name (`onnx_fp32`, `onnx_int8`) to a path relative to the run folder.
    `reference` holds the figures of the float model before any compression, the baseline for
    "maximum accuracy drop" budgets: `val_accuracy` for choosing a file, `accuracy` (test) for the verdict. `devices` holds the verdicts of the last validation. `heads` are
    auxiliary classifiers beside the backbone (never inside it, so export sees only `model`), rebuilt
    on resume from `head_specs`.
    """

    model: nn.Module
    heads: nn.ModuleDict | None = None
    head_specs: list[dict] = field(default_factory=list)
    artifacts: dict[str, str] = field(default_factory=dict)
    reference: dict = field(default_factory=dict)
    compressed: bool = False
    devices: dict = field(default_factory=dict)
    widths: list[dict] = field(default_factory=list)  # nested widths: {width, checkpoint, params, macs} of each sliced model, narrowest first

    NOT_JSON = ("model", "heads")  # saved as checkpoints beside the state, not in it

    def to_json(self) -> dict:
        """Everything but the networks, as the stage's state.json records it."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in self.NOT_JSON}

    @classmethod
    def from_json(cls, saved: dict, model: nn.Module, heads: nn.ModuleDict | None = None) -> "ModelState":
        """The inverse of `to_json`, given the networks loaded from their checkpoints: a new field
        resumes without touching the runner, and one an older run did not write takes its default."""
        return cls(model=model, heads=heads, **{f.name: saved[f.name] for f in fields(cls) if f.name not in cls.NOT_JSON and f.name in saved})

    def weights_trained(self, metrics: dict, source: str) -> None:
        """After training: until something compresses the model, its figures are the baseline that
        accuracy-drop budgets compare against; and earlier exports are now stale."""
        if not self.compressed:
            self.reference = {**{k: metrics[k] for k in ("accuracy", "val_accuracy", "params", "macs", "size_bytes")}, "source": source}
        self.model_changed()

    def model_changed(self) -> None:
        """Exported files and sliced widths describe the old weights: drop them so no stage ships a stale model."""
        self.artifacts.clear()
        self.devices.clear()
        self.widths.clear()
