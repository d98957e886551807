"""INT8 quantization back ends and searches used by the `quantize` stage.

`ort_backend` quantizes an exported FP32 ONNX file with onnxruntime's own quantizer; `qat` trains
with fake quantization (torch.ao FX) and exports the converted INT8 model; `inc_backend` goes through
neural-compressor's pt2e path; `accuracy_aware` searches, for any back end, the fewest layers to leave
in FP32 so an accuracy budget holds. Every route ends in one ONNX file that the stage checks the
same way: agreement with FP32, INT8 op coverage in onnxruntime's optimised graph, accuracy.

Each back end × method is a `Route` (`route.py`), registered by its back end's module below.
"""

from pipeline.quantization import ort_routes  # noqa: F401  (registers onnxruntime's routes first: the default back end)
from pipeline.quantization import inc_routes  # noqa: F401
