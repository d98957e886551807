"""A full disk told apart from other failures, and said in one paragraph (the run-level behaviour is
in tests/test_hostile_inputs.py, on a real small disk)."""

import errno
import shutil

from pipeline.core import disk_space
from pipeline.core.disk_space import DiskFull, disk_full, human, out_of_space, size_of


def test_enospc_anywhere_in_the_chain_is_a_full_disk(tmp_path):
    assert out_of_space(OSError(errno.ENOSPC, "No space left on device"), tmp_path)
    assert out_of_space(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path)
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("PytorchStreamWriter failed writing file") from inner
    except RuntimeError as outer:
        assert out_of_space(outer, tmp_path)
    assert not out_of_space(OSError(errno.EACCES, "Permission denied"), tmp_path), "plenty of space here: another failure"
    assert not out_of_space(RuntimeError("unexpected pos 8128 vs 8024"), tmp_path)


def test_any_failure_with_the_disk_nearly_full_is_a_full_disk(tmp_path, monkeypatch):
    """torch's writer says RuntimeError('unexpected pos …') for a full disk: the free space decides."""
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda _p: usage._replace(free=disk_space.FULL_BELOW - 1))
    assert out_of_space(RuntimeError("unexpected pos 8128 vs 8024"), tmp_path)
    monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda _p: usage._replace(free=disk_space.FULL_BELOW))
    assert not out_of_space(RuntimeError("unexpected pos 8128 vs 8024"), tmp_path)


def test_the_paragraph_names_the_folder_the_space_and_the_stages_kept(tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "01-train").mkdir(parents=True)
    (run / "01-train" / "model.pt").write_bytes(b"\0" * 3000)
    (run / "02-export").mkdir()
    (run / "02-export" / "model.onnx").write_bytes(b"\0" * 5000)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda _p: usage._replace(free=2048))
    error = disk_full(RuntimeError("unexpected pos 8128 vs 8024\nmore"), run, run / "02-export", [run / "01-train"])
    assert isinstance(error, DiskFull)
    assert str(error) == (
        f"the disk holding the run folder {run} is full (2.0 KB free) while stage 02-export was writing (RuntimeError: "
        "unexpected pos 8128 vs 8024). The stage had written 4.9 KB and the largest finished stage holds 2.9 KB: free at "
        "least 9.8 KB there (or choose another --out), then run the same command again; the finished stages (01-train) are kept and resume."
    )
    assert not (run / "02-export").exists(), "the partial stage folder is removed"
    assert (run / "01-train" / "model.pt").is_file()
    assert "no stage had finished" in str(disk_full(OSError(errno.ENOSPC, ""), run, run / "01-train", []))


def test_sizes_read_at_a_glance():
    assert [human(n) for n in (512, 2048, 5 * 2**20, 3 * 2**30, 2**42)] == ["512 B", "2.0 KB", "5.0 MB", "3.0 GB", "4096.0 GB"]


def test_size_of_a_folder_a_file_and_nothing(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"12345")
    (tmp_path / "a" / "sub").mkdir()
    (tmp_path / "a" / "sub" / "y").write_bytes(b"123")
    assert size_of(tmp_path / "a") == 8 and size_of(tmp_path / "a" / "x") == 5 and size_of(tmp_path / "none") == 0


def test_an_implicit_context_counts_too(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("while saving")  # noqa: B904  the context alone links them
    except RuntimeError as outer:
        assert outer.__cause__ is None and out_of_space(outer, tmp_path)


def test_a_disk_that_cannot_be_measured_is_not_called_full(tmp_path, monkeypatch):
    def unreadable(_path):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(disk_space.shutil, "disk_usage", unreadable)
    assert not out_of_space(RuntimeError("unexpected pos"), tmp_path)


def test_sizes_at_the_unit_edge():
    assert human(1023) == "1023 B" and human(1024) == "1.0 KB"


def test_the_paragraph_without_a_message_without_a_stage_folder_and_with_several_stages(tmp_path, monkeypatch):
    run = tmp_path / "run"
    for name in ("01-train", "02-prune"):
        (run / name).mkdir(parents=True)
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(disk_space.shutil, "disk_usage", lambda p: usage._replace(free=10) if p == run else 1 / 0)
    text = str(disk_full(RuntimeError(""), run, run / "03-export", [run / "01-train", run / "02-prune"]))
    assert "(10 B free) while stage 03-export was writing (RuntimeError: no message). The stage had written 0 B" in text
    assert text.endswith("the finished stages (01-train, 02-prune) are kept and resume.")
    alone = str(disk_full(RuntimeError("x" * 300), run, run / "01-train", []))
    assert f"(RuntimeError: {'x' * 160}). The stage had written 0 B and the largest finished stage holds 0 B: free at least 0 B" in alone
    assert alone.endswith("; no stage had finished.")
