"""Every Python example of the README and docs/ runs as written against the server `make run` starts.

The examples of one document run in order in one namespace, as a reader pastes them into one
session; the server's address (``http://127.0.0.1:8080`` in the text) is the test server's, and the
working directory holds ``data/demo`` as ``make run`` leaves it.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_examples(document: Path) -> list[str]:
    return _BLOCK.findall(document.read_text())


def test_the_readme_has_examples_to_run():
    assert len(python_examples(REPO / "README.md")) >= 5


@pytest.mark.parametrize("document", [d for d in DOCUMENTS if python_examples(d)], ids=lambda d: d.name)
def test_the_examples_of_a_document_run_as_written(document, live_server, tmp_path):
    shutil.copytree(live_server.data_dir / "demo", tmp_path / "data" / "demo")
    namespace: dict = {"__name__": "__example__"}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for number, code in enumerate(python_examples(document), start=1):
            code = code.replace("http://127.0.0.1:8080", live_server.root)
            try:
                exec(compile(code, f"{document.name} example {number}", "exec"), namespace)
            except Exception as exc:
                pytest.fail(f"{document.name}, example {number} failed: {type(exc).__name__}: {exc}\n{code}")
    finally:
        os.chdir(cwd)
    if document.name == "README.md":  # what the examples say they write
        assert {"ndvi-max.tif", "profiles.csv", "weighted.csv", "clouds.nc"} <= {p.name for p in tmp_path.iterdir()}
