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


class SlightlyOffWhenExported(Small):
    """The exported graph adds 0.01 to every logit: the class never changes, only the values drift,
    as when an exporter mistranslates an op by a little."""

    def forward(self, x):
        out = super().forward(x)
        return out + 0.01 if torch.onnx.is_in_onnx_export() else out


@pytest.mark.parametrize("runtime_default", [True, False])
def test_a_drift_in_the_logits_alone_fails_parity_at_the_default_tolerance(tmp_path, runtime_default):
    """Same predicted class on every sample, logits 0.01 off: the absolute-difference clause alone
    refuses it, at the tolerance a recipe gets by default (the export stage's) and the exporter's own."""
    from pipeline.stages.export import ExportConfig

    torch.manual_seed(0)
    x = torch.randn(64, 1, 8, 8)
    limits = {} if runtime_default else {"max_abs_diff": ExportConfig().max_abs_diff, "min_top1_agreement": ExportConfig().min_top1_agreement}
    with pytest.raises(ParityError, match=r"max \|diff\| 0\.01 \(limit 0\.001\), top-1 agreement 1\.0000"):
        export_onnx(SlightlyOffWhenExported(), tmp_path / "m.onnx", x, **limits)
    assert not (tmp_path / "m.onnx").exists()
