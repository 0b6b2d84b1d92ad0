"""The users' workspaces (``/files``): one private folder per user under ``<data_dir>/workspaces``.

Paths come from URLs and process graphs, so every path is resolved here, in one place: relative,
POSIX-style, no ``.``/``..`` segments, no hidden names, and the resolved file must lie inside the
user's own folder (symlinks included). Folder names are derived from the user id so that no user
id can name another user's folder. Uploads are streamed to a temporary file in the same folder
and moved into place, so a failed upload never leaves half a file; a workspace with a quota refuses
an upload that would take it over (``StorageQuotaExceeded``), before reading it when its length is
given.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from processes.core.errors import (
    FileNotFound,
    FileOperationUnsupported,
    FilePathInvalid,
    FileSizeExceeded,
    OpenEOError,
    StorageQuotaExceeded,
)

MAX_FILE_BYTES = 2 * 1024**3
# The API's file path pattern forbids \r \n \\ : ' " (and a leading /); control characters too.
_SAFE_SEGMENT = re.compile(r"^[^/\x00-\x1f\x7f\\:'\"]+$")
_CHUNK = 1024 * 1024


class Workspace:
    """The workspace of one user."""

    def __init__(self, root: Path, user_id: str, max_file_bytes: int = MAX_FILE_BYTES, quota_bytes: int | None = None):
        self.user_id = user_id
        self.max_file_bytes = max_file_bytes
        self.quota_bytes = quota_bytes
        """Most bytes the workspace may hold (None: no quota)."""
        digest = hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:16]
        slug = re.sub(r"[^A-Za-z0-9_-]", "_", user_id)[:40]
        self.root = (root / f"{slug}-{digest}").resolve()

    # --- paths -------------------------------------------------------------------------------------
    def resolve(self, path: str, *, must_exist: bool = True) -> Path:
        """The file at workspace path ``path``; ``FilePathInvalid`` / ``FileNotFound`` otherwise."""
        relative = self._relative(path)
        target = (self.root / relative).resolve()
        if target != self.root and self.root not in target.parents:
            raise FilePathInvalid(f"File path is invalid: '{path}' points outside your workspace.")
        if must_exist:
            if target.is_dir():
                raise FileOperationUnsupported(
                    f"'{path}' is a folder; this operation is only supported for files (GET /files lists them)."
                )
            if not target.is_file():
                raise FileNotFound(f"File '{path}' does not exist in your workspace; GET /files lists your files.")
        return target

    @staticmethod
    def _relative(path: str) -> PurePosixPath:
        if not isinstance(path, str) or not path.strip():
            raise FilePathInvalid("File path is invalid: it is empty.")
        pure = PurePosixPath(path)
        if pure.is_absolute():
            raise FilePathInvalid(f"File path is invalid: '{path}' must be relative to your workspace (no leading /).")
        for part in path.split("/"):
            if part in (".", "..") or part.startswith(".") or not _SAFE_SEGMENT.match(part):
                raise FilePathInvalid(
                    f"File path is invalid: segment '{part}' of '{path}' is not allowed "
                    "(no '.', '..', hidden names, control characters or any of \\ : ' \")."
                )
        return pure

    # --- operations --------------------------------------------------------------------------------
    def list(self) -> list[dict[str, Any]]:
        return [self._describe(p) for p in sorted(self._files())]

    def _files(self) -> Iterator[Path]:
        if not self.root.is_dir():
            return
        for folder, _dirs, files in os.walk(self.root):
            for name in files:
                if not name.startswith("."):
                    yield Path(folder) / name

    def _describe(self, file: Path) -> dict[str, Any]:
        stat = file.stat()
        return {
            "path": file.relative_to(self.root).as_posix(),
            "size": stat.st_size,
            "modified": datetime.fromtimestamp(stat.st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def used_bytes(self) -> int:
        """Bytes of the files in the workspace."""
        total = 0
        for file in self._files():
            try:
                total += file.stat().st_size
            except OSError:  # removed meanwhile
                pass
        return total

    def put(self, path: str, stream: IO[bytes] | Iterable[bytes], size: int | None = None) -> dict[str, Any]:
        """Store the bytes of ``stream`` at ``path``; ``size`` (the request's length, if given) lets an
        upload over the quota be refused before it is read."""
        target = self.resolve(path, must_exist=False)
        if target.is_dir():
            raise FileOperationUnsupported(f"'{path}' is a folder; upload to a file path instead.")
        room = None
        if self.quota_bytes is not None:  # the file replaced at ``path`` frees its room
            used = self.used_bytes() - (target.stat().st_size if target.is_file() else 0)
            room = self.quota_bytes - used
            if size is not None and size > room:
                raise self._over_quota(used, size)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        written = 0
        try:
            with os.fdopen(handle, "wb") as out:
                chunks = iter(lambda: stream.read(_CHUNK), b"") if hasattr(stream, "read") else stream
                for chunk in chunks:
                    written += len(chunk)
                    if written > self.max_file_bytes:
                        raise FileSizeExceeded(
                            f"File size is too large. Maximum file size: {self.max_file_bytes} bytes."
                        )
                    if room is not None and written > room:
                        raise self._over_quota((self.quota_bytes or 0) - room, written, at_least=True)
                    out.write(chunk)
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return self._describe(target)

    def _over_quota(self, used: int, adding: int, at_least: bool = False) -> OpenEOError:
        quota = self.quota_bytes or 0
        return StorageQuotaExceeded(
            f"Your storage quota has been exceeded: your workspace holds {_mib(used)} of its {_mib(quota)} "
            f"quota, too little for this upload ({'at least ' if at_least else ''}{_mib(adding)}). Delete files "
            "you no longer need (GET /files lists them, DELETE /files/{path} removes one), or upload a smaller file."
        )

    def delete(self, path: str) -> None:
        target = self.resolve(path)
        target.unlink()
        folder = target.parent
        while folder != self.root and not any(folder.iterdir()):  # empty folders go with their last file
            folder.rmdir()
            folder = folder.parent

    def delete_all(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _mib(count: int) -> str:
    return f"{count / 2**20:.1f} MiB"
