"""Everything a run logs goes to `run.log` in its folder; the terminal shows the pipeline's own lines.

Libraries the pipeline drives (torch, ExecuTorch, OpenVINO, neural-compressor, …) log deprecations and
notes a user cannot act on, and Python warnings say the same kind of thing. During a run they go to
the file only, with the pipeline's own lines at every level, so a question about a run has its
answer in its folder and the screen stays readable. (A library that writes to the process's stderr
from C, not through Python's logging, still reaches the screen.)
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

LIBRARIES = ("torch", "torchao", "executorch", "coremltools", "neural_compressor", "openvino", "nncf", "onnxscript", "onnxruntime")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[Path]:
    """While the block runs: every record of the pipeline and warnings of the libraries into `path`
    (appended: a resumed run continues its log), and no library line on the terminal."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    root, pipeline_log = logging.getLogger(), logging.getLogger("compress")
    saved = {name: (logging.getLogger(name).handlers[:], logging.getLogger(name).propagate) for name in LIBRARIES}
    level = pipeline_log.level
    pipeline_log.setLevel(logging.DEBUG)  # the terminal's handler keeps its own level; the file gets every line
    root.addHandler(handler)
    for name in LIBRARIES:
        library = logging.getLogger(name)
        library.handlers = [h for h in library.handlers if not isinstance(h, logging.StreamHandler) or isinstance(h, logging.FileHandler)]
        library.propagate = True  # to the root logger: the file
    logging.captureWarnings(True)
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        handler.close()
        pipeline_log.setLevel(level)
        for name, (handlers, propagate) in saved.items():
            logging.getLogger(name).handlers, logging.getLogger(name).propagate = handlers, propagate


@contextlib.contextmanager
def console_quiet() -> Iterator[None]:
    """The terminal shows warnings only inside the block (a tune's trials: each keeps every line in its
    own run.log, and the tune prints one line per trial instead)."""
    terminal = [h for h in logging.getLogger("compress").handlers if not isinstance(h, logging.FileHandler)]
    levels = [h.level for h in terminal]
    for h in terminal:
        h.setLevel(max(h.level, logging.WARNING))
    try:
        yield
    finally:
        for h, level in zip(terminal, levels):
            h.setLevel(level)
