"""ncnn export (`.param` + `.bin`, through pnnx) with a parity check run in ncnn itself.

ncnn is Tencent's inference library for phone and Raspberry Pi CPUs. pnnx traces the module with
TorchScript and writes ncnn's graph (`.param`) and weights (`.bin`); weights are kept in FP32 here
(pnnx's default is FP16 storage) so parity is judged on the network as trained. ncnn on an Arm
device still computes in FP16 where the CPU has it (its default), which the on-device run's
agreement with the host shows. The pip packages ship no INT8 calibration tool (`ncnn2table` /
`ncnn2int8` come with a source build), so this exporter writes FP32 only.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from devices.on_device.runtimes import open_runner, require
from exporters.parity import ExportResult, ExportUnsupported, check_parity, first_line, reject, torch_outputs, write_sidecar
from exporters.runtime_exporter import RuntimeExporter


def export_ncnn(
    module: nn.Module,
    path: Path,
    parity_inputs: torch.Tensor,
    metadata: dict[str, str] | None = None,
    *,
    max_abs_diff: float = 1e-3,
    min_top1_agreement: float = 0.99,
) -> ExportResult:
    """Write `path` (`model.ncnn.param`) and its `.bin`; run `parity_inputs` in ncnn and compare with PyTorch."""
    require("ncnn")
    import pnnx

    module = module.eval().cpu()
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        traced_file, side = Path(tmp) / "model.pt", Path(tmp) / "side"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.jit.trace(module, parity_inputs[:1]).save(str(traced_file))
            except Exception as e:
                raise ExportUnsupported(f"ncnn (pnnx) needs a TorchScript trace, which failed: {first_line(e)}") from e
        shape = "[" + ",".join(str(d) for d in parity_inputs[:1].shape) + "]f32"
        command = [pnnx.EXEC_PATH, str(traced_file), f"inputshape={shape}", "device=cpu", "fp16=0", f"ncnnparam={path}", f"ncnnbin={path.with_suffix('.bin')}"]
        command += [f"{key}={side}.{key}" for key in ("pnnxparam", "pnnxbin", "pnnxpy", "pnnxonnx", "ncnnpy")]  # pnnx's side files stay out of the stage folder
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not path.is_file():
        raise ExportUnsupported(f"pnnx could not convert the model to ncnn (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-600:]}")
    unconverted = unconverted_layers(path)
    if unconverted:
        reject(path)
        raise ExportUnsupported(f"ncnn has no layer for operator(s) {', '.join(unconverted)} (left unconverted by pnnx); export to another runtime")
    write_sidecar(path, metadata)
    runner = open_runner(path, "ncnn", threads=1)
    return check_parity(torch_outputs(module, parity_inputs), runner(parity_inputs.numpy()), path, "ncnn", max_abs_diff, min_top1_agreement)


def unconverted_layers(param: Path) -> list[str]:
    """Layer types in the `.param` that are PyTorch names, not ncnn layers: what pnnx could not convert
    (`aten::sort`, `F.xxx`, `torch.xxx`, and the `pnnx.Expression` arguments they leave); ncnn would refuse to load them."""
    types = [line.split()[0] for line in param.read_text().splitlines()[2:] if line.strip()]
    foreign = {t for t in types if re.search(r"[.:]", t)}  # aten::sort, F.grid_sample, torch.xxx, pnnx.Expression
    return sorted(foreign, key=lambda t: (t == "pnnx.Expression", t))  # the operator first, its leftover arguments after


def export_file(module: nn.Module, onnx_file: Path, path: Path, parity_inputs: torch.Tensor, metadata: dict[str, str], *, int8_calibration=None, **settings) -> ExportResult:
    """The pipeline's call: ncnn is traced from the module itself (FP32 only: `RuntimeExporter.make` refuses INT8)."""
    return export_ncnn(module, path, parity_inputs, metadata, **settings)


EXPORTER = RuntimeExporter(
    "ncnn", export_file, int8="", name_mark=".ncnn",
    no_int8="the pip packages of ncnn and pnnx ship no INT8 calibration tool (ncnn2table / ncnn2int8 need a source build)",
)
