"""A job's folder: attempts publish their files as results; result names resolve only inside results/."""

from __future__ import annotations

import os

import pytest

from backend.jobs.folder import JobFolder
from backend.jobs.results import STAC_FILE


@pytest.fixture
def folder(tmp_path) -> JobFolder:
    job = JobFolder(tmp_path / "jobs" / "j1")
    scratch = job.scratch("runner#2")
    scratch.mkdir(parents=True)
    (scratch / "result.tif").write_bytes(b"data")
    (scratch / STAC_FILE).write_text("{}")
    job.publish(scratch)
    (tmp_path / "jobs" / "terracube.db").write_text("secret")
    return job


def test_an_attempt_has_its_own_folder_and_becomes_the_results(folder):
    assert folder.scratch("runner#2").name == "run-2"
    assert not folder.scratch("runner#2").exists()
    assert (folder.results / "result.tif").read_bytes() == b"data"


def test_publishing_again_replaces_the_earlier_results(folder):
    scratch = folder.scratch("runner#3")
    scratch.mkdir()
    (scratch / "other.tif").write_bytes(b"new")
    folder.publish(scratch)
    assert sorted(p.name for p in folder.results.iterdir()) == ["other.tif"]


def test_a_result_file_resolves_by_its_name(folder):
    assert folder.result_file("result.tif") == folder.results / "result.tif"


@pytest.mark.parametrize("name", ["", ".", "..", "../terracube.db", "../../jobs/terracube.db", "/etc/passwd",
                                  "sub/result.tif", STAC_FILE, "missing.tif"])
def test_no_name_reaches_outside_the_results_or_the_stac_document(folder, name):
    assert folder.result_file(name) is None


def test_a_link_out_of_the_results_is_not_served(folder, tmp_path):
    os.symlink(tmp_path / "jobs" / "terracube.db", folder.results / "link.tif")
    assert folder.result_file("link.tif") is None
