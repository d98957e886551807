"""The board's safe reading of a bundle: paths that leave its folder, altered files, a wrong manifest."""

import json
import zipfile

import pytest

from devices.on_device.bundle_files import BundleError, checked_model, inside, read_manifest, sha256, unpack


def refused(check, *args) -> str:
    with pytest.raises(BundleError) as caught:
        check(*args)
    return str(caught.value)


def test_paths_inside_the_folder_resolve_and_the_rest_are_refused(tmp_path):
    root = tmp_path.resolve()
    assert inside(tmp_path, "a/b.npy") == root / "a/b.npy"
    assert inside(tmp_path, ".") == root, "the folder itself is inside"
    for outside in ("../x", "/etc/passwd", "a/../../x"):
        assert refused(inside, tmp_path, outside) == f"refusing path {outside!r}: it points outside the bundle folder {root}"
    (tmp_path / "link").symlink_to(tmp_path.parent)
    assert refused(inside, tmp_path, "link/x").startswith("refusing path 'link/x'")
    sibling = tmp_path.parent / (tmp_path.name + "-evil")  # shares the folder's name as a prefix, is not inside it
    assert refused(inside, tmp_path, f"../{sibling.name}/x").startswith("refusing path")


def test_unpack_writes_members_and_folders_and_refuses_an_escaping_member(tmp_path):
    bundle = tmp_path / "b.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("samples/", "")
        archive.writestr("samples/x.npy", b"x")
        archive.writestr("deep/er/y.txt", b"y")
        archive.writestr("deep/", "")  # a folder entry after its files (zip tools write either order)
    into = tmp_path / "into"
    assert unpack(bundle, into) == into
    assert (into / "samples").is_dir() and (into / "samples/x.npy").read_bytes() == b"x" and (into / "deep/er/y.txt").read_bytes() == b"y"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../escaped.txt", b"z")
    assert refused(unpack, evil, tmp_path / "into2").startswith("refusing path '../escaped.txt'")
    assert not (tmp_path / "escaped.txt").exists()


def test_the_manifest_must_be_there_be_json_and_have_the_format(tmp_path):
    assert refused(read_manifest, tmp_path / "b.zip", tmp_path, "fmt/1") == f"{tmp_path / 'b.zip'}: no manifest.json; is this a bundle made by `compress bundle`?"
    (tmp_path / "manifest.json").write_text("{half")
    assert refused(read_manifest, tmp_path, tmp_path, "fmt/1").startswith(f"{tmp_path}: manifest.json is not JSON (")
    (tmp_path / "manifest.json").write_text("[1]")
    assert refused(read_manifest, tmp_path, tmp_path, "fmt/1") == f"{tmp_path}: manifest format 'list', expected 'fmt/1'"
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "fmt/0"}))
    assert refused(read_manifest, tmp_path, tmp_path, "fmt/1") == f"{tmp_path}: manifest format 'fmt/0', expected 'fmt/1'"
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "fmt/1", "model": {}}))
    assert read_manifest(tmp_path, tmp_path, "fmt/1") == {"format": "fmt/1", "model": {}}


def test_every_model_file_must_match_its_recorded_hash(tmp_path):
    (tmp_path / "model.xml").write_bytes(b"graph")
    (tmp_path / "model.bin").write_bytes(b"weights")
    entry = {"path": "model.xml", "sha256": sha256(tmp_path / "model.xml"), "files": {"model.bin": sha256(tmp_path / "model.bin")}}
    assert checked_model(tmp_path, entry) == (tmp_path / "model.xml").resolve()
    assert checked_model(tmp_path, {"path": "model.xml", "sha256": entry["sha256"]}) == (tmp_path / "model.xml").resolve()
    (tmp_path / "model.bin").write_bytes(b"other weights")
    assert refused(checked_model, tmp_path, entry) == (
        f"model.bin: SHA-256 {sha256(tmp_path / 'model.bin')} does not match the manifest's {entry['files']['model.bin']}; "
        "the bundle was altered or corrupted"
    )
    (tmp_path / "model.bin").write_bytes(b"weights")
    (tmp_path / "model.xml").write_bytes(b"graph, edited")
    assert refused(checked_model, tmp_path, entry).startswith("model.xml: SHA-256")


def test_sha256_reads_files_larger_than_one_block(tmp_path):
    import hashlib

    data = bytes(range(256)) * 8193  # a little over 2 MiB: three reads of 1 MiB
    (tmp_path / "big").write_bytes(data)
    assert sha256(tmp_path / "big") == hashlib.sha256(data).hexdigest()
