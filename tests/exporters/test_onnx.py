import json

import onnx
import pytest
import torch
from torch import nn

from exporters import ParityError, export_onnx, onnx_logits


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.conv(x).relu().mean((2, 3)))


class TracesDifferently(Small):
    """Python-side state baked in at trace time: the classic silently wrong export."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return super().forward(x) * (1.0 if self.calls == 1 else -1.0)


def test_export_passes_parity_and_keeps_metadata(tmp_path):
    torch.manual_seed(0)
    x = torch.randn(64, 1, 8, 8)
    result = export_onnx(Small(), tmp_path / "m.onnx", x, {"preprocessing": json.dumps({"mean": 0.5})})
    assert result.max_abs_diff < 1e-4 and result.top1_agreement == 1.0 and result.parity_samples == 64
    model = onnx.load(str(tmp_path / "m.onnx"))
    assert model.opset_import[0].version >= 17
    assert {p.key: p.value for p in model.metadata_props}["preprocessing"] == '{"mean": 0.5}'
    assert onnx_logits(tmp_path / "m.onnx", x[:5].numpy()).shape == (5, 3), "dynamic batch"


def test_broken_export_is_rejected_not_shipped(tmp_path):
    x = torch.randn(32, 1, 8, 8)
    with pytest.raises(ParityError, match="disagrees with PyTorch"):
        export_onnx(TracesDifferently(), tmp_path / "m.onnx", x)
    assert not (tmp_path / "m.onnx").exists()
    assert (tmp_path / "m.onnx.rejected").exists()
