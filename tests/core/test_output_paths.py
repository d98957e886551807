"""Output folders and files are checked before any work, with the system's reason and the option to change."""

import pytest

from pipeline.core.errors import UserError
from pipeline.core.output_paths import writable_file, writable_folder


def refusal(check, *args) -> str:
    with pytest.raises(UserError) as caught:
        check(*args)
    return str(caught.value)


def test_a_folder_is_made_with_its_parents_may_exist_and_is_left_empty(tmp_path):
    writable_folder(tmp_path / "a/b/run", "--out DIR")
    writable_folder(tmp_path / "a/b/run", "--out DIR")
    assert list((tmp_path / "a/b/run").iterdir()) == []


def test_a_folder_under_a_file_or_on_a_read_only_disk_is_refused(tmp_path, read_only_folder):
    (tmp_path / "file").write_text("")
    assert refusal(writable_folder, tmp_path / "file/run", "--out DIR") == (
        f"cannot write to the output folder {tmp_path / 'file/run'}: Not a directory. Choose another with --out DIR."
    )
    assert refusal(writable_folder, read_only_folder, "--out DIR") == (
        f"cannot write to the output folder {read_only_folder}: Read-only file system. Choose another with --out DIR."
    )


def test_a_writable_file_path_passes_and_leaves_nothing(tmp_path):
    writable_file(tmp_path / "new" / "bundle.zip", "-o", "bundle", "bundle.zip")
    assert (tmp_path / "new").is_dir() and list((tmp_path / "new").iterdir()) == []


def test_a_file_path_that_is_a_folder_under_a_file_or_read_only_is_refused(tmp_path, read_only_folder):
    assert refusal(writable_file, tmp_path, "-o", "bundle", "bundle.zip") == (
        f"bundle: -o {tmp_path} is a folder; give the file's name, e.g. {tmp_path / 'bundle.zip'}"
    )
    (tmp_path / "a-file").write_text("")
    assert refusal(writable_file, tmp_path / "a-file" / "b.zip", "-o", "bundle", "bundle.zip") == (
        f"bundle: cannot write {tmp_path / 'a-file' / 'b.zip'}: File exists; choose another path with -o"
    )
    assert refusal(writable_file, read_only_folder / "b.zip", "-o", "bundle", "bundle.zip") == (
        f"bundle: cannot write {read_only_folder / 'b.zip'}: Read-only file system; choose another path with -o"
    )


def test_a_failure_without_a_system_reason_is_told_in_its_own_words(tmp_path, monkeypatch):
    from pipeline.core import output_paths

    def refuse(**kwargs):
        raise OSError("the sync client holds this folder")

    monkeypatch.setattr(output_paths.tempfile, "TemporaryFile", refuse)
    assert refusal(writable_folder, tmp_path, "--out DIR") == (
        f"cannot write to the output folder {tmp_path}: the sync client holds this folder. Choose another with --out DIR."
    )
