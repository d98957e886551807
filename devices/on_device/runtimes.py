"""One way to run a model file in each on-device runtime: ONNX Runtime, OpenVINO, ncnn, ExecuTorch.

Every runner is called the same way, `runner(x)` with a float32 NCHW array, and returns the model's
outputs as numpy arrays with the batch first, so accuracy, parity and latency code is written once.
Shipped in each bundle beside `validate_on_device.py` and imported by the pipeline, so the host
runs a file the way the device does. Only the standard library and numpy at import time; each
runtime's package is imported when a file of that runtime is opened, and a missing one is a
`RuntimeMissing` error naming the pip command.

ExecuTorch is the exception to "no torch": its Python runtime (`executorch.extension.pybindings`)
links against libtorch and imports torch to load it. On a phone the app uses ExecuTorch's C++ or
Java runtime; in Python there is no torch-free way to run a `.pte`.

Each runner class is also its runtime's description for the device: the runtime's name, the pip
package that provides it, the suffix that identifies its files, whether the weights sit in a `.bin`
beside the graph, and the word artifact names use for its format (`onnx_fp32`, `ncnn_int8`).
`@runner` registers it; every table of runtimes elsewhere is read from `RUNNERS`. The host's side of
a runtime (how its file is made, its INT8 path) is its exporter's `RuntimeExporter`.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
import tempfile
from pathlib import Path

RUNNERS: dict[str, type] = {}  # runtime -> its runner class, in the order they are defined (ONNX Runtime first)


def runner(cls: type) -> type:
    """Register a runner class under its `runtime` name."""
    if cls.runtime in RUNNERS:
        raise ValueError(f"runtime {cls.runtime!r} is registered twice")
    RUNNERS[cls.runtime] = cls
    return cls


class RuntimeMissing(Exception):
    """The runtime a file or profile needs is not installed here."""


@contextlib.contextmanager
def c_stderr_to_log(logger: str):
    """What a runtime's C or C++ code writes straight to the process's stderr inside the block (notes
    a user cannot act on, such as ExecuTorch's cpuinfo probing of /sys files an x86 host lacks) goes to
    the `logger` warning log instead: on the host that is the run's log file, not the screen."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace").strip()
    if text:
        logging.getLogger(logger).warning(text)


class Runner:
    """What the device needs to know of a runtime; a subclass opens a file (`__init__(path, threads)`)
    and runs a float32 NCHW batch (`__call__(x)` -> the outputs, batch first)."""

    runtime: str  # the name recipes and profiles use
    package: str  # the pip package that provides it (what a bundle's script needs on the device)
    suffix: str  # the suffix of its model file
    weights_beside = False  # the weights sit in a .bin beside the graph file
    artifact_format: str  # the word artifact names use: onnx_fp32, ncnn_int8
    torch_note = ""  # why its Python runtime needs torch on the device, if it does


def require(runtime: str):
    """The runtime's Python package, or a `RuntimeMissing` naming the pip command."""
    if runtime not in RUNNERS:
        raise RuntimeMissing(f"unknown runtime {runtime!r}; known: {', '.join(RUNNERS)}")
    package = RUNNERS[runtime].package
    try:
        return importlib.import_module(package)
    except ImportError:
        raise RuntimeMissing(
            f"runtime {runtime} is not installed here: pip install {package} "
            f"(or, in the edge-compress checkout, pip install -e '.[{runtime}]')"
        ) from None


def installed(runtime: str) -> bool:
    return importlib.util.find_spec(RUNNERS[runtime].package) is not None


def runtime_of(path: Path) -> str:
    """Which runtime a model file is for, from its suffix (.onnx ONNX Runtime, .xml OpenVINO, .param ncnn, .pte ExecuTorch)."""
    suffix = Path(path).suffix
    for runtime, cls in RUNNERS.items():
        if suffix == cls.suffix:
            return runtime
    known = ", ".join(cls.suffix + (" + .bin" if cls.weights_beside else "") for cls in RUNNERS.values())
    raise ValueError(f"{path}: not a model file of a known runtime ({known})")


def model_files(path: Path) -> list[Path]:
    """Every file the model needs on the device: ncnn and OpenVINO keep the weights in a .bin beside the graph."""
    path = Path(path)
    if any(cls.weights_beside and path.suffix == cls.suffix for cls in RUNNERS.values()):
        return [path, path.with_suffix(".bin")]
    return [path]


def open_runner(path: Path, runtime: str | None = None, threads: int = 1):
    """A runner for the file in its runtime (given, or from the file name), on `threads` CPU threads."""
    return RUNNERS[runtime or runtime_of(path)](Path(path), threads)


@runner
class OnnxRuntime(Runner):
    """Sequential execution, `threads` intra-op threads, all graph optimisations (what the device runs)."""

    runtime = "onnxruntime"
    package = "onnxruntime"
    suffix = ".onnx"
    artifact_format = "onnx"

    def __init__(self, path: Path, threads: int, optimized_copy: Path | None = None):
        ort = require("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        if optimized_copy is not None:
            options.optimized_model_filepath = str(optimized_copy)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = self.session.get_inputs()[0].shape
        self.version = ort.__version__

    def __call__(self, x):
        return self.session.run(None, {self.input_name: x})


_OPENVINO_CORE = None


def openvino_core():
    """The process's one OpenVINO `Core`, made on first use and never released.

    OpenVINO's CPU plugin gives the main thread an alternate signal stack of its own when a Core
    first compiles, and on release puts back the stack it found. Two Cores released in the order
    they were made (not the reverse) leave the thread pointing at the first one's freed stack; the
    next signal with a Python handler (SIGCHLD once DataLoader workers have run, Ctrl-C) then cannot
    be delivered and the kernel kills the process with SIGSEGV. One Core for the whole process means
    one plugin, one stack, nothing put back out of order; it also keeps every compiled model's Core
    alive, which a compiled model outliving its Core needs.
    """
    global _OPENVINO_CORE
    if _OPENVINO_CORE is None:
        _OPENVINO_CORE = require("openvino").Core()
    return _OPENVINO_CORE


@runner
class OpenVino(Runner):
    """OpenVINO's CPU plugin on an IR (.xml + .bin) or an ONNX file, latency mode, `threads` threads,
    f32 inference precision (OpenVINO's default hint on CPUs with bf16/fp16 units computes in reduced
    precision, which moved logits by 1e-3 here: parity and accuracy are judged on what f32 gives)."""

    runtime = "openvino"
    package = "openvino"
    suffix = ".xml"
    weights_beside = True
    artifact_format = "openvino"

    def __init__(self, path: Path, threads: int):
        ov = require("openvino")
        core = openvino_core()
        model = core.read_model(str(path))
        self.input_shape = [d.get_length() if d.is_static else None for d in model.input(0).get_partial_shape()]
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.outputs = list(self.compiled.outputs)
        self.version = ov.__version__ if hasattr(ov, "__version__") else ov.get_version()

    def __call__(self, x):
        result = self.request.infer([x])
        return [result[output].copy() for output in self.outputs]


@runner
class Ncnn(Runner):
    """ncnn on its .param + .bin, CPU only, `threads` threads, FP32 storage and arithmetic. ncnn's
    default stores activations in FP16 wherever the CPU converts them (x86 F16C, Armv8.2), which
    moved a trained CNN's logits by 6e-4 here against 3e-6 in FP32: parity, accuracy and latency are
    all judged on the FP32 path an app gets by clearing `opt.use_fp16_*`. ncnn runs one sample at a
    time (a Mat is C×H×W), so a batch is run sample by sample and stacked."""

    runtime = "ncnn"
    package = "ncnn"
    suffix = ".param"
    weights_beside = True
    artifact_format = "ncnn"

    def __init__(self, path: Path, threads: int):
        ncnn = require("ncnn")
        self.ncnn = ncnn
        self.net = ncnn.Net()
        self.net.opt.num_threads = threads
        self.net.opt.use_vulkan_compute = False
        for option in ("use_fp16_storage", "use_fp16_packed", "use_fp16_arithmetic", "use_bf16_storage"):
            setattr(self.net.opt, option, False)
        if self.net.load_param(str(path)) != 0 or self.net.load_model(str(path.with_suffix(".bin"))) != 0:
            raise ValueError(f"{path}: ncnn could not load it (a layer type this ncnn build does not know, or a missing .bin)")
        self.inputs, self.outputs = self.net.input_names(), self.net.output_names()
        self.input_shape = None
        self.version = getattr(ncnn, "__version__", "unknown")

    def __call__(self, x):
        import numpy as np

        per_sample = []
        for sample in x:
            extractor = self.net.create_extractor()
            extractor.input(self.inputs[0], self.ncnn.Mat(np.ascontiguousarray(sample)).clone())
            per_sample.append([np.array(extractor.extract(name)[1]) for name in self.outputs])
        return [np.stack([outputs[k] for outputs in per_sample]) for k in range(len(self.outputs))]


@runner
class ExecuTorch(Runner):
    """ExecuTorch's runtime on a .pte (XNNPACK-delegated where the exporter lowered it), `threads`
    threads in XNNPACK's pool, which is one per process: runners alive at the same time must use
    the same thread count. Programs are exported at batch 1, so a batch runs sample by sample."""

    runtime = "executorch"
    package = "executorch"
    suffix = ".pte"
    artifact_format = "executorch"
    torch_note = "whose Python runtime loads libtorch, so pip pulls torch; an app uses the C++/Java runtime"

    def __init__(self, path: Path, threads: int):
        require("executorch")
        import torch
        from executorch.extension.pybindings import portable_lib  # imports torch: its pybindings link libtorch

        self.torch = torch
        with c_stderr_to_log("executorch"):  # the pool's first use prints cpuinfo notes from C++, a reset says so too
            if portable_lib._threadpool_get_thread_count() != threads:
                # "unsafe": programs already loaded keep using the old pool, and one run after a reset
                # crashed the process (SIGSEGV) here. Reset only on a real change, with no other program alive.
                portable_lib._unsafe_reset_threadpool(threads)
        self.module = portable_lib._load_for_executorch(str(path))
        self.input_shape = None
        self.version = importlib.metadata.version("executorch")

    def __call__(self, x):
        import numpy as np

        per_sample = [self.module.forward((self.torch.from_numpy(np.ascontiguousarray(x[i : i + 1])),)) for i in range(len(x))]
        return [np.concatenate([outputs[k].numpy() for outputs in per_sample]) for k in range(len(per_sample[0]))]
