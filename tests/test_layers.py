"""The dependency rule of docs/design.md, checked on the source: each folder of `pipeline/` imports
only the folders below it, no module imports a stage, and `exporters/` imports nothing of `pipeline/`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# folder of pipeline/ -> the folders of pipeline/ (and top-level packages) it may import
MAY_IMPORT = {
    "core": {"devices"},  # the board's file hashing (devices/on_device/bundle_files.py): one SHA-256 for runs, bundles and boards
    "data": {"core"},
    "models": {"core"},
    "training": {"core", "data", "models"},
    "runtime": {"core", "data", "exporters", "devices"},
    "quantization": {"core", "data", "models", "training", "runtime", "exporters", "devices"},
    "deploy": {"core", "data", "runtime", "exporters", "devices"},
    "pruning": {"core", "data", "models", "training", "runtime", "deploy"},
    "widths": {"core", "models", "training", "pruning"},
    "reporting": {"core", "data", "models", "runtime", "deploy", "exporters", "devices"},
    "tasks": {"core", "models", "training", "devices"},  # what differs between classification and detection, above the training loop it feeds
    "stages": {"core", "data", "models", "training", "tasks", "runtime", "quantization", "deploy", "pruning", "widths", "exporters", "devices", "boards"},  # boards: validate times candidate files on a profile's board
    "tune": {"core", "deploy", "recipe", "runner", "external", "exporters"},  # above the runner: a study runs recipes (external: the --data parser; exporters: a trial's ParityError)
    "boards": {"core", "deploy", "devices"},  # a finished run's bundle, run on a board over SSH, judged with the gate's rules
    "commands": {"core", "data", "deploy", "reporting", "tune", "boards", "exporters", "devices", "external"},  # the CLI's command groups: the top, like cli.py (external: nms reads a file's input shape as validate does)
}


def imports(path: Path) -> set[str]:
    """Every module `path` imports, as dotted names (`from a.b import c` gives a.b and a.b.c)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def project_packages(module: str) -> str | None:
    """The folder a project import lands in: `pipeline.core.errors` -> core, `exporters` -> exporters."""
    parts = module.split(".")
    if parts[0] == "pipeline" and len(parts) > 1:
        return parts[1]
    return parts[0] if parts[0] in ("exporters", "devices") else None


def modules_of(folder: str) -> list[Path]:
    return sorted((ROOT / "pipeline" / folder).rglob("*.py"))


def violations(folder: str, paths: list[Path]) -> list[str]:
    return sorted({
        f"{path.name} imports {module}"
        for path in paths
        for module in imports(path)
        if (target := project_packages(module)) not in (None, folder) and target not in MAY_IMPORT[folder]
    })


@pytest.mark.parametrize("folder", sorted(MAY_IMPORT))
def test_each_folder_imports_only_the_folders_below_it(folder):
    assert not violations(folder, modules_of(folder))


def test_every_folder_of_pipeline_has_a_rule():
    folders = {p.name for p in (ROOT / "pipeline").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert folders == set(MAY_IMPORT), "a new folder needs its row in MAY_IMPORT and in docs/design.md"


def test_no_module_imports_a_stage():
    """Stage modules import only the contract (`stages.base`); the stage package itself is imported
    by the recipe (and its schema) and the runner only, to reach the registry."""
    wrong = []
    for path in sorted((ROOT / "pipeline").rglob("*.py")):
        for module in imports(path):
            if not module.startswith("pipeline.stages") or module.startswith("pipeline.stages.base"):
                continue
            in_stages = path.parent.name == "stages"
            registry_user = path.relative_to(ROOT).as_posix() in ("pipeline/recipe.py", "pipeline/recipe_schema.py", "pipeline/runner.py", "pipeline/fingerprints.py") and module in ("pipeline.stages", "pipeline.stages.STAGES")
            registers = in_stages and path.name == "__init__.py"
            if not (registry_user or registers):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, wrong


def test_exporters_import_nothing_of_pipeline():
    wrong = [f"{p.relative_to(ROOT)} imports {m}" for p in sorted((ROOT / "exporters").rglob("*.py")) for m in imports(p) if m.split(".")[0] == "pipeline"]
    assert not wrong, wrong


def test_an_upward_import_is_caught(tmp_path):
    """The checker itself must fail on a violation, or the tests above prove nothing."""
    planted = tmp_path / "bad.py"
    planted.write_text("import torch\nfrom pipeline.core.errors import UserError\n\n\ndef f():\n    from pipeline.reporting.report_json import build_report\n")
    assert violations("deploy", [planted]) == ["bad.py imports pipeline.reporting.report_json", "bad.py imports pipeline.reporting.report_json.build_report"]
