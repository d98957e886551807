"""Reading a bundle safely on the board: no path may leave the bundle's folder, and every model file
must match the SHA-256 the host recorded. Standard library only; each bundle ships it beside the script."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

MANIFEST = "manifest.json"


class BundleError(Exception):
    """The bundle cannot be trusted or read: a path outside its folder, a wrong hash, a missing file."""


def inside(folder: Path, relative: str) -> Path:
    """`folder / relative`, refusing any path that resolves outside `folder` (absolute, `..`, links)."""
    root = folder.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise BundleError(f"refusing path {relative!r}: it points outside the bundle folder {root}")
    return target


def unpack(bundle: Path, into: Path) -> Path:
    """Extract a zip bundle member by member, refusing any member whose path escapes `into`."""
    with zipfile.ZipFile(bundle) as archive:
        for member in archive.infolist():
            target = inside(into, member.filename)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as sink:
                sink.write(source.read())
    return into


def read_manifest(bundle: Path, folder: Path, expected_format: str) -> dict:
    """The bundle's manifest, refused unless it is there, is a JSON object and has the expected format."""
    path = inside(folder, MANIFEST)
    if not path.is_file():
        raise BundleError(f"{bundle}: no {MANIFEST}; is this a bundle made by `compress bundle`?")
    try:
        manifest = json.loads(path.read_text())
    except ValueError as e:
        raise BundleError(f"{bundle}: {MANIFEST} is not JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != expected_format:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise BundleError(f"{bundle}: manifest format {found!r}, expected {expected_format!r}")
    return manifest


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_model(folder: Path, model: dict) -> Path:
    """The model file of the manifest's `model` entry, after every file it lists (the model and any
    weights beside it) matched its recorded SHA-256."""
    expected = {**model.get("files", {}), model["path"]: model["sha256"]}
    for name, digest in expected.items():
        actual = sha256(inside(folder, name))
        if actual != digest:
            raise BundleError(f"{name}: SHA-256 {actual} does not match the manifest's {digest}; the bundle was altered or corrupted")
    return inside(folder, model["path"])
