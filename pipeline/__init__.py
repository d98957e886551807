"""edge-compress: a staged recipe that turns a PyTorch model into a deployable, gated INT8 ONNX file."""

__version__ = "0.1.0"
