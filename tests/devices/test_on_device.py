"""Bundle -> torch-free on-device script -> gate / calibrate, as a user with a board would run them."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import pytest
import yaml
from click.testing import CliRunner

from devices.on_device import bundle_files, coco_eval, decisions, detections, measure, runtimes, verdicts
from devices.on_device import validate_on_device as on_device
from pipeline.cli import main

SCRIPT = Path(on_device.__file__)


@pytest.fixture(scope="module")
def run_dir(finished_run) -> Path:
    return finished_run


@pytest.fixture(scope="module")
def bundle(run_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "bundle.zip"
    result = CliRunner().invoke(main, ["bundle", str(run_dir), "--device", "raspberry-pi-4", "-o", str(out), "--samples", "100"])
    assert result.exit_code == 0, result.output
    return out


def without_torch(tmp_path: Path) -> dict:
    """An environment in which `import torch` (and the project) fails, as on a board."""
    shadow = tmp_path / "shadow"
    for name in ("torch", "pipeline", "exporters", "devices"):
        (shadow / name).mkdir(parents=True, exist_ok=True)
        (shadow / name / "__init__.py").write_text(f"raise ImportError('{name} is not installed on this device')\n")
    return {"PYTHONPATH": str(shadow), "PATH": "/usr/bin:/bin"}


def on_board(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the script as shipped inside the bundle, from a folder holding nothing else."""
    board = tmp_path / "board"
    board.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=board, env=without_torch(tmp_path), capture_output=True, text=True, timeout=300
    )


def imports(tree: ast.AST) -> set[str]:
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return imported | {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


SHIPPED = [on_device, measure, verdicts, bundle_files, decisions, detections, coco_eval]


@pytest.mark.parametrize("module", SHIPPED, ids=["script", "measure", "verdicts", "bundle_files", "decisions", "detections", "coco_eval"])
def test_the_script_and_its_library_are_python_3_8_and_import_nothing_of_torch_or_the_project(module):
    tree = ast.parse(Path(module.__file__).read_text(), feature_version=(3, 8))
    # `devices` only as the package they ship from; on the board the siblings `runtimes` (checked below) and the others;
    # pycocotools only where a detector's mAP is computed, and only when asked (a board without it reports no mAP)
    siblings = {"runtimes", "measure", "verdicts", "bundle_files", "decisions", "detections", "coco_eval"}
    allowed = set(sys.stdlib_module_names) | {"numpy", "__future__", "devices"} | siblings | ({"pycocotools"} if module is coco_eval else set())
    assert imports(tree) <= allowed


def test_every_module_the_script_imports_ships_in_the_bundle():
    assert {Path(m.__file__).stem for m in SHIPPED[1:]} | {"runtimes"} == set(on_device.SHIPPED_BESIDE)


def test_the_runtimes_module_imports_torch_only_for_executorch():
    tree = ast.parse(Path(runtimes.__file__).read_text(), feature_version=(3, 8))
    module_level = {n for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom)) for n in imports(node)}
    assert module_level <= set(sys.stdlib_module_names) | {"__future__"}
    executorch = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "ExecuTorch")
    elsewhere = [node for node in tree.body if node is not executorch]
    assert "torch" in imports(executorch) and not any("torch" in imports(node) for node in elsewhere)


def test_bundle_holds_model_hash_samples_budgets_and_script(bundle, run_dir):
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert {"manifest.json", "validate_on_device.py", "measure.py", "verdicts.py", "bundle_files.py", "runtimes.py", "README.txt", manifest["model"]["path"]} <= names
    report = json.loads((run_dir / "report.json").read_text())
    shipped = report["devices"]["raspberry-pi-4"]["artifact"]
    assert manifest["model"]["artifact"] == shipped
    assert manifest["model"]["sha256"] == bundle_files.sha256(run_dir / report["artifacts"][shipped])
    assert manifest["samples"]["count"] == 100 and manifest["budgets"]["max_latency_p90_ms"] == 2.0
    assert manifest["samples"]["pixels"] in names and "inputs" not in manifest["samples"], "image data travels as uint8 pixels"
    assert len(manifest["preprocessing"]["mean"]) == 1 and manifest["preprocessing"]["scale"] == 1 / 255
    assert bundle.stat().st_size < 1_000_000


def test_script_runs_without_torch_and_its_verdict_matches_the_gate(bundle, tmp_path):
    done = on_board(tmp_path, str(bundle), "--out", str(tmp_path / "results.json"))
    assert done.returncode in (0, 1), done.stderr
    assert "verdict:" in done.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["format"] == verdicts.RESULTS_FORMAT and results["samples"] == 100
    assert results["agreement_with_host"] >= 0.97 and results["peak_memory_mb"] > 0
    assert {"p50", "p90", "p99", "spread", "runs"} <= set(results["latency_ms"])
    profile_budgets = set(yaml.safe_load(open("devices/raspberry-pi-4.yaml"))["budgets"])
    assert set(results["budgets"]) == profile_budgets - {"min_map", "max_map_drop"}  # a classifier's bundle: not judged by a detector's budgets
    gate = CliRunner().invoke(main, ["gate", str(tmp_path / "results.json")])
    assert gate.exit_code == done.returncode


def test_the_unpacked_bundle_judges_itself_with_no_argument(bundle, tmp_path):
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(unpacked)
    done = subprocess.run(
        [sys.executable, "validate_on_device.py"], cwd=unpacked, env=without_torch(tmp_path), capture_output=True, text=True, timeout=300
    )
    assert done.returncode in (0, 1), done.stderr
    assert "verdict:" in done.stdout and (unpacked / "results.json").is_file()


def test_a_tampered_model_is_refused(bundle, tmp_path):
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(tampered, "w") as sink:
        for item in source.infolist():
            data = source.read(item)
            sink.writestr(item, data + b"\0" if item.filename.startswith("model/") else data)
    done = on_board(tmp_path, str(tampered))
    assert done.returncode == 2 and "does not match the manifest" in done.stderr
    assert not (tmp_path / "board" / "results.json").exists()


def test_a_bundle_with_a_path_outside_its_folder_is_refused(bundle, tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(evil, "w") as sink:
        for item in source.infolist():
            sink.writestr(item, source.read(item))
        sink.writestr("../../escaped.txt", "gotcha")
    done = on_board(tmp_path, str(evil))
    assert done.returncode == 2 and "points outside the bundle folder" in done.stderr
    assert not list(tmp_path.rglob("escaped.txt"))


def test_a_manifest_pointing_outside_the_bundle_is_refused(bundle, tmp_path):
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["samples"]["pixels"] = "/etc/passwd"
    (folder / "manifest.json").write_text(json.dumps(manifest))
    done = on_board(tmp_path, str(folder))
    assert done.returncode == 2 and "outside the bundle folder" in done.stderr


def results_with(tmp_path: Path, **values) -> str:
    rows = {"max_size_kb": (30.0, 512), "max_latency_p90_ms": (0.5, 2.0), "min_accuracy": (0.85, 0.8)}
    rows.update(values)
    budgets = {name: {"limit": limit, "value": value, "passed": True} for name, (value, limit) in rows.items()}
    results = {"format": verdicts.RESULTS_FORMAT, "device": "raspberry-pi-4", "budgets": budgets}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(results))
    return str(path)


@pytest.mark.parametrize(
    "values, code",
    [
        ({}, 0),
        ({"max_latency_p90_ms": (2.5, 2.0)}, 1),  # the verdict is re-judged from the value, not trusted
        ({"min_accuracy": (None, 0.8)}, 2),
    ],
)
def test_gate_exit_codes_for_device_results(tmp_path, values, code):
    result = CliRunner().invoke(main, ["gate", results_with(tmp_path, **values)])
    assert result.exit_code == code, result.output


def test_junit_has_a_case_per_device_and_budget_and_marks_failures(tmp_path):
    junit, summary = tmp_path / "gate.xml", tmp_path / "summary.md"
    path = results_with(tmp_path, max_latency_p90_ms=(2.5, 2.0), min_accuracy=(None, 0.8))
    result = CliRunner().invoke(main, ["gate", path, "--junit", str(junit), "--summary", str(summary)])
    assert result.exit_code == 1
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase") if case.get("classname") == "compress.gate.raspberry-pi-4"}
    assert set(cases) == {"max_size_kb", "max_latency_p90_ms", "min_accuracy"}
    assert cases["max_latency_p90_ms"].find("failure") is not None and cases["min_accuracy"].find("error") is not None
    assert cases["max_size_kb"].find("failure") is None
    assert suite.get("failures") == "1" and int(suite.get("errors")) >= 1
    text = summary.read_text()
    assert text.startswith("## compress gate: FAIL") and "| raspberry-pi-4 | max_latency_p90_ms | 2.5 | 2 | ❌ FAIL |" in text


def test_calibrate_writes_a_user_copy_and_refuses_another_models_results(bundle, run_dir, tmp_path):
    done = on_board(tmp_path, str(bundle), "--out", str(tmp_path / "results.json"))
    assert done.returncode in (0, 1), done.stderr
    out = tmp_path / "pi.yaml"
    arm = CliRunner().invoke(main, ["devices", "calibrate", "raspberry-pi-4", str(tmp_path / "results.json"), "--run", str(run_dir), "-o", str(out)])
    assert arm.exit_code == 1 and "profile raspberry-pi-4 is a cortex-a72 (arm) device" in arm.output and not out.exists(), arm.output
    x86_pi = tmp_path / "x86-pi.yaml"  # the Pi 4's profile as if its CPU were this host's kind: the results' architecture
    x86_pi.write_text(yaml.safe_dump({**yaml.safe_load(open("devices/raspberry-pi-4.yaml")), "cpu": "x86-64"}))
    result = CliRunner().invoke(main, ["devices", "calibrate", str(x86_pi), str(tmp_path / "results.json"), "--run", str(run_dir), "-o", str(out)])
    assert result.exit_code == 0, result.output
    calibrated = yaml.safe_load(out.read_text())
    assert calibrated["latency_factor_source"] == "calibrated" and calibrated["latency_factor"] > 0
    assert "device one-thread p50" in calibrated["latency_factor_note"]
    results = json.loads((tmp_path / "results.json").read_text())
    one, four = results["latency_one_thread_ms"]["p50"], results["latency_ms"]["p50"]
    assert calibrated["thread_speedup_source"] == "calibrated" and calibrated["thread_speedup"] == round(min(max(one / four, 1), 4), 3)
    assert CliRunner().invoke(main, ["devices", "show", str(out)]).exit_code == 0

    results = json.loads((tmp_path / "results.json").read_text())
    results["model_sha256"] = "0" * 64
    (tmp_path / "other.json").write_text(json.dumps(results))
    other = CliRunner().invoke(main, ["devices", "calibrate", str(x86_pi), str(tmp_path / "other.json"), "--run", str(run_dir), "-o", str(tmp_path / "x.yaml")])
    assert other.exit_code == 1 and "different model" in other.output

    refused = CliRunner().invoke(main, ["gate", str(tmp_path / "other.json"), "--run", str(run_dir)])
    assert refused.exit_code == 2 and "different model" in refused.output
    assert CliRunner().invoke(main, ["gate", str(tmp_path / "results.json"), "--run", str(run_dir)]).exit_code == done.returncode

    wrong = CliRunner().invoke(main, ["devices", "calibrate", "host", str(tmp_path / "results.json"), "-o", str(tmp_path / "y.yaml")])
    assert wrong.exit_code == 1 and "from device 'raspberry-pi-4', not 'host'" in wrong.output

    shipped = CliRunner().invoke(main, ["devices", "calibrate", str(x86_pi), str(tmp_path / "results.json"), "-o", "devices/raspberry-pi-4.yaml", "--force"])
    assert shipped.exit_code == 1 and "shipped profiles folder" in shipped.output


def test_pixels_round_trip_through_the_scripts_normalisation(run_dir):
    """The bundle stores the test images as pixels only when normalising them back is exact; the
    on-device script's `normalise` then gives the host's inputs, and a user's float data stays float."""
    import numpy as np

    from pipeline.data import DataConfig, load_data
    from pipeline.deploy.bundle import as_pixels

    data = load_data(DataConfig(source="embedded", test_subset=50), seed=0)
    x = data.test.take()[0].numpy()
    preprocessing, pixels = as_pixels(x, data.mean, data.std)
    assert pixels.dtype == np.uint8 and np.abs(measure.normalise(pixels, preprocessing) - x).max() < 1e-5
    assert as_pixels(np.random.default_rng(0).normal(size=(4, 3, 8, 8)).astype(np.float32), [0.5] * 3, [0.2] * 3) is None


class SlowRunner:
    """A model that takes `seconds` a run (numpy in, a classifier's output out)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __call__(self, x):
        import time

        import numpy as np

        time.sleep(self.seconds)
        return [np.zeros((len(x), 10), dtype=np.float32)]


def test_the_time_cap_holds_inside_a_batch_but_never_below_the_fewest_runs():
    import numpy as np

    runner = SlowRunner(0.02)  # 20 runs take 0.4 s, past the 0.1 s cap: the timing stops at the floor
    figures = measure.measure_latency(runner, np.zeros((1, 1, 28, 28)), warmup=0, min_runs=200, max_seconds=0.1)
    assert figures["runs"] == measure.FEWEST_TIMED_RUNS and not figures["stable"]


def test_a_fast_model_is_timed_at_least_its_runs_whatever_the_cap():
    import numpy as np

    figures = measure.measure_latency(SlowRunner(0.0), np.zeros((1, 1, 28, 28)), warmup=0, min_runs=200, max_seconds=60)
    assert figures["runs"] >= 200


class LoggingRunner(SlowRunner):
    """A runner that writes its name in a shared log at each call: the order the rounds ran in."""

    def __init__(self, name: str, log: list, seconds: float = 0.0):
        super().__init__(seconds)
        self.name, self.log = name, log

    def __call__(self, x):
        self.log.append(self.name)
        return super().__call__(x)


def test_interleaved_rounds_load_every_file_afresh_alternate_the_order_and_give_a_median_per_round(monkeypatch):
    import numpy as np

    calls, loads = [], []

    run_seconds = 1.2 * measure.ROUND_SECONDS / 10  # 10 runs last past the round time

    def open_runner(path, threads=1):
        loads.append(path.name)
        return LoggingRunner(path.name, calls, run_seconds)

    monkeypatch.setattr(measure.runtimes, "open_runner", open_runner)
    timed = measure.interleaved_latencies({"a": Path("a"), "b": Path("b")}, np.zeros((1, 1, 28, 28)), threads=1, warmup=1, runs=40, rounds=4)
    assert loads == ["a", "b"] * 4
    per_round = len(calls) // 4
    assert per_round == 2 * (1 + 1 + 10)  # each load: a look at the output's shape, the warm-up, a turn of 10 runs
    turns = [[name for name in calls[r * per_round + 4:(r + 1) * per_round]] for r in range(4)]
    assert [(t[0], t[-1]) for t in turns] == [("a", "b"), ("b", "a"), ("a", "b"), ("b", "a")]
    for figures in timed.values():
        assert figures["runs"] == 40 and len(figures["rounds_p50"]) == 4
        assert all(run_seconds * 1000 <= p50 < run_seconds * 1000 + 50 for p50 in figures["rounds_p50"])


def test_a_fast_models_turn_in_a_round_lasts_the_round_time_not_just_its_runs(monkeypatch):
    import numpy as np

    monkeypatch.setattr(measure.runtimes, "open_runner", lambda path, threads=1: SlowRunner(float(path.name)))
    timed = measure.interleaved_latencies({"fast": Path("0.0")}, np.zeros((1, 1, 28, 28)), threads=1, warmup=0, runs=20, rounds=2)
    assert timed["fast"]["runs"] > 20 * 5, "a turn of microsecond runs lasting the round time is hundreds of runs, not 10"
    run_seconds = 1.2 * measure.ROUND_SECONDS / 10
    slow = measure.interleaved_latencies({"slow": Path(str(run_seconds))}, np.zeros((1, 1, 28, 28)), threads=1, warmup=0, runs=20, rounds=2)
    assert slow["slow"]["runs"] == 20, "runs of 1.2x a tenth of the round time: 10 a turn already last past it"
