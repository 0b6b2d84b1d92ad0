"""Workspace paths: confined to the user's own folder, whatever the path says."""

from __future__ import annotations

import io

import pytest

from backend.workspace import Workspace
from processes.core.errors import FileNotFound, FileOperationUnsupported, FilePathInvalid, FileSizeExceeded


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    return Workspace(tmp_path / "workspaces", "demo")


def test_put_resolve_and_delete(workspace):
    described = workspace.put("a/b/c.txt", io.BytesIO(b"hello"))
    assert described["path"] == "a/b/c.txt" and described["size"] == 5
    assert workspace.resolve("a/b/c.txt").read_bytes() == b"hello"
    workspace.delete("a/b/c.txt")
    assert not (workspace.root / "a").exists()
    with pytest.raises(FileNotFound):
        workspace.resolve("a/b/c.txt")


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", ".env", "a/./b", "", "a\\..\\b",
                                  "c:x.txt", "it's.txt", 'say"hi".txt', "tab\tname.txt"])
def test_bad_paths_are_refused(workspace, path):
    with pytest.raises(FilePathInvalid):
        workspace.resolve(path, must_exist=False)


def test_symlinks_out_of_the_workspace_are_refused(workspace, tmp_path):
    (tmp_path / "outside.txt").write_text("server secret")
    workspace.root.mkdir(parents=True)
    (workspace.root / "link.txt").symlink_to(tmp_path / "outside.txt")
    with pytest.raises(FilePathInvalid):
        workspace.resolve("link.txt")


def test_user_ids_cannot_name_another_users_folder(tmp_path):
    assert Workspace(tmp_path, "../demo").root.parent == Workspace(tmp_path, "demo").root.parent
    assert Workspace(tmp_path, "../demo").root != Workspace(tmp_path, "demo").root


def test_folders_are_not_files(workspace):
    workspace.put("f/x.txt", io.BytesIO(b"x"))
    with pytest.raises(FileOperationUnsupported):
        workspace.resolve("f")


def test_size_limit_leaves_no_partial_file(tmp_path):
    workspace = Workspace(tmp_path, "demo", max_file_bytes=10)
    with pytest.raises(FileSizeExceeded):
        workspace.put("big.bin", io.BytesIO(b"x" * 11))
    assert workspace.list() == []
