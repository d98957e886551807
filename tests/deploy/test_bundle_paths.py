"""The bundle's output path is checked before any work."""

import pytest

from pipeline.core.errors import UserError
from pipeline.deploy.bundle import writable


def test_a_writable_path_passes_and_leaves_nothing(tmp_path):
    writable(tmp_path / "new" / "bundle.zip")
    assert (tmp_path / "new").is_dir() and list((tmp_path / "new").iterdir()) == []


def test_a_folder_or_a_path_under_a_file_is_refused(tmp_path):
    with pytest.raises(UserError, match=f"^bundle: -o {tmp_path} is a folder; give the zip's file name, e.g. {tmp_path / 'bundle.zip'}$"):
        writable(tmp_path)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(UserError, match=f"^bundle: cannot write {tmp_path / 'a-file' / 'b.zip'}: .*; choose another path with -o$"):
        writable(tmp_path / "a-file" / "b.zip")
