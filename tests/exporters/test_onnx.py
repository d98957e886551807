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


def parity_files(tmp_path, name="m.onnx"):
    path = tmp_path / name
    path.write_bytes(b"graph")
    return path


def test_a_file_with_other_outputs_is_refused_and_rejected(tmp_path):
    import numpy as np

    from exporters.parity import check_parity

    logits = np.zeros((4, 3), np.float32)
    path = parity_files(tmp_path)
    with pytest.raises(ParityError) as count:
        check_parity([logits], [logits, logits], path, "ncnn", 1e-3, 0.99)
    assert str(count.value) == "ncnn export of m.onnx has 2 output(s), PyTorch 1. The file was not shipped."
    assert not path.exists() and (tmp_path / "m.onnx.rejected").exists()
    path = parity_files(tmp_path, "n.onnx")
    with pytest.raises(ParityError) as shape:
        check_parity([logits, logits], [logits, np.zeros((4, 5), np.float32)], path, "openvino", 1e-3, 0.99)
    assert str(shape.value) == "openvino export of n.onnx: output 1 has shape [4, 5], PyTorch's [4, 3]. The file was not shipped."
    assert not path.exists() and (tmp_path / "n.onnx.rejected").exists()


def test_agreement_is_judged_on_class_scores_and_at_the_limits_passes(tmp_path):
    import numpy as np

    from exporters.parity import check_parity

    logits = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    flipped = logits.copy()
    flipped[0] = [0.0, 1.0]  # one of four answers changes: agreement 0.75, |diff| 1.0
    result = check_parity([logits], [flipped], parity_files(tmp_path), "ncnn", max_abs_diff=1.0, min_top1_agreement=0.75)
    assert result.top1_agreement == 0.75 and result.max_abs_diff == 1.0, "both figures exactly at their limits pass"
    assert result.path == tmp_path / "m.onnx" and result.runtime == "ncnn" and result.parity_samples == 4
    with pytest.raises(ParityError, match="top-1 agreement 0.7500 \\(minimum 0.76\\)"):
        check_parity([logits], [flipped], parity_files(tmp_path), "ncnn", max_abs_diff=1.0, min_top1_agreement=0.76)


def test_feature_maps_are_held_to_the_tolerance_not_to_an_argmax(tmp_path):
    """A 4-D output whose channel argmax flips on near-ties, within the tolerance: parity holds, and
    the agreement reported is that of the class scores alone."""
    import numpy as np

    from exporters.parity import check_parity

    features = np.zeros((4, 2, 3, 3), np.float32)
    nudged = features.copy()
    nudged[:, 1] += 1e-6  # every channel argmax moves from 0 to 1
    logits = np.eye(4, 3, dtype=np.float32)
    result = check_parity([logits, features], [logits, nudged], parity_files(tmp_path), "onnxruntime", 1e-3, 0.99)
    assert result.top1_agreement == 1.0 and result.max_abs_diff == pytest.approx(1e-6)
    alone = check_parity([features], [nudged], parity_files(tmp_path, "f.onnx"), "onnxruntime", 1e-3, 0.99)
    assert alone.top1_agreement == 1.0


def test_a_module_with_several_outputs_gives_each_one(tmp_path):
    from exporters.parity import torch_outputs

    class Two(nn.Module):
        def forward(self, x):
            return x * 2, x + 1

    outputs = torch_outputs(Two(), torch.ones(2, 3))
    assert len(outputs) == 2 and outputs[0].tolist() == [[2.0] * 3] * 2 and outputs[1].tolist() == [[2.0] * 3] * 2
    assert [o.shape for o in torch_outputs(Small(), torch.ones(2, 1, 8, 8))] == [(2, 3)]


def test_an_exporters_error_is_cut_to_its_first_line_or_named_by_its_type():
    from exporters.parity import first_line

    assert first_line(RuntimeError("  aten::foo is not supported\n  at line 3  ")) == "aten::foo is not supported"
    assert first_line(RuntimeError("x" * 500)) == "x" * 400
    assert first_line(KeyError()) == "KeyError" and first_line(ValueError("   ")) == "ValueError"


def test_a_result_and_its_metadata_are_plain_json(tmp_path):
    from exporters.parity import ExportResult, write_sidecar

    result = ExportResult(path=tmp_path / "m.pte", max_abs_diff=1e-6, top1_agreement=1.0, parity_samples=8, runtime="executorch")
    assert result.to_json() == {
        "path": str(tmp_path / "m.pte"), "max_abs_diff": 1e-6, "top1_agreement": 1.0, "parity_samples": 8, "runtime": "executorch", "details": {},
    }
    write_sidecar(tmp_path / "m.pte", {"k": "v", "n": "1"})
    assert (tmp_path / "m.pte.json").read_text() == '{\n  "k": "v",\n  "n": "1"\n}\n'
    write_sidecar(tmp_path / "n.pte", {})
    assert not (tmp_path / "n.pte.json").exists(), "no metadata, no sidecar"
