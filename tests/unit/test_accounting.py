"""Roles and limits, costs from a price list, usage summed per user, and the operator's ``terracube users``."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import pytest

from backend.accounting.billing import billing_document, job_costs
from backend.accounting.limits import check_result_storage, limits_of, roles_of
from backend.accounting.usage import all_usage, human_bytes
from backend.cli import main
from backend.jobs.folder import JobFolder
from backend.jobs.store import JobStore, make_engine
from backend.settings import Settings, SettingsError
from backend.workspace import Workspace
from processes.core.errors import StorageQuotaExceeded

PROCESS = {"process_graph": {"a": {"process_id": "add", "arguments": {"x": 1, "y": 2}, "result": True}}}
USAGE = {"cpu": {"value": 120.0, "unit": "cpu-seconds"}, "result_bytes": {"value": 2e9, "unit": "bytes"},
         "input_pixels": {"value": 5e6, "unit": "values"}}
PRICES = {"currency": "EUR", "cpu_seconds": 0.001, "result_gb": 0.1, "input_megapixels": 0.01}


@dataclass(frozen=True)
class FakeUser:
    user_id: str
    roles: tuple[str, ...] = ()


def test_roles_come_from_the_admin_list_and_the_identity_provider():
    settings = Settings(admins=("root",))
    assert roles_of(settings, FakeUser("root")) == ("user", "admin")
    assert roles_of(settings, FakeUser("ann", ("premium", "user"))) == ("user", "premium")


def test_a_user_gets_the_most_generous_limit_of_their_roles():
    settings = Settings.from_env({"TERRACUBE_LIMITS": json.dumps(
        {"user": {"running_jobs": 2, "workspace_mb": 10}, "premium": {"running_jobs": 8, "workspace_mb": None}})})
    user = limits_of(settings, ("user",))
    assert user.running_jobs == 2 and user.workspace_bytes == 10 * 2**20
    assert user.result_bytes == 102_400 * 2**20  # the default, merged under the given limits
    premium = limits_of(settings, ("user", "premium"))
    assert premium.running_jobs == 8 and premium.workspace_bytes is None
    assert limits_of(settings, ("user", "admin")).running_jobs is None


def test_sync_pixels_default_to_the_servers_limit():
    settings = Settings.from_env({"TERRACUBE_SYNC_MAX_PIXELS": "5000",
                                  "TERRACUBE_LIMITS": '{"user": {"sync_pixels": 100}}'})
    assert limits_of(settings, ("user",)).sync_pixels == 100
    assert limits_of(settings, ("user", "admin")).sync_pixels == 5000


@pytest.mark.parametrize("variable, value, says", [
    ("TERRACUBE_LIMITS", '{"user": {"running": 2}}', "unknown limits ['running']"),
    ("TERRACUBE_LIMITS", '{"user": {"running_jobs": -1}}', "whole number"),
    ("TERRACUBE_PRICES", '{"cpu_seconds": 0.1}', "currency"),
    ("TERRACUBE_PRICES", '{"currency": "EUR", "gpu_hours": 1}', "unknown keys ['gpu_hours']"),
])
def test_bad_limits_and_prices_name_the_variable_and_the_fix(variable, value, says):
    with pytest.raises(SettingsError, match=variable) as error:
        Settings.from_env({variable: value})
    assert says in str(error.value)


def test_federation_defaults():
    settings = Settings()
    assert settings.result_retention_days >= 90 and settings.job_retention_days >= 365
    assert settings.result_link_ttl_seconds == 7 * 86_400 and settings.sync_timeout_seconds == 300


def test_costs_follow_the_price_list():
    assert job_costs(PRICES, USAGE) == pytest.approx(0.12 + 0.2 + 0.05)
    assert job_costs(None, USAGE) is None and job_costs(PRICES, None) is None


def test_billing_is_listed_only_with_a_price_list():
    assert billing_document(None) is None
    billing = billing_document(PRICES)
    assert billing["currency"] == "EUR" and billing["default_plan"] == billing["plans"][0]["name"]
    assert billing["plans"][0]["paid"] and "0.001 EUR per CPU second" in billing["plans"][0]["description"]


def test_a_job_does_not_start_while_results_fill_the_quota(tmp_path):
    settings = Settings(data_dir=tmp_path, demo=False, limits={"user": {"result_mb": 1}})
    store = JobStore(make_engine(settings.job_store_url))
    job = store.create("ann", PROCESS)
    check_result_storage(settings, store, "ann", limits_of(settings, ("user",)))
    results = JobFolder.of(settings, job.id).results
    results.mkdir(parents=True)
    (results / "big.tif").write_bytes(b"x" * 2**20)
    with pytest.raises(StorageQuotaExceeded, match=r"1\.0 MiB.*DELETE /jobs"):
        check_result_storage(settings, store, "ann", limits_of(settings, ("user",)))


def test_an_upload_over_the_workspace_quota_is_refused_and_leaves_nothing(tmp_path):
    workspace = Workspace(tmp_path, "ann", quota_bytes=1000)
    workspace.put("a.bin", io.BytesIO(b"x" * 600))
    with pytest.raises(StorageQuotaExceeded, match="DELETE /files"):
        workspace.put("b.bin", io.BytesIO(b"x" * 600))  # length unknown: refused while streaming
    with pytest.raises(StorageQuotaExceeded):
        workspace.put("c.bin", io.BytesIO(b""), size=600)  # length given: refused before reading
    assert [f["path"] for f in workspace.list()] == ["a.bin"]
    workspace.put("a.bin", io.BytesIO(b"x" * 900))  # replacing a file frees its room
    assert workspace.used_bytes() == 900


@pytest.fixture
def accounts(tmp_path) -> Settings:
    """A store with two users' jobs, results and files."""
    settings = Settings(data_dir=tmp_path, demo=False, users={"ann": "pw", "bob": "pw"}, admins=("root",),
                        prices=PRICES)
    store = JobStore(make_engine(settings.job_store_url))
    for _ in range(2):
        job = store.create("ann", PROCESS)
        store.queue("ann", job.id)
        claimed = store.claim_next("runner")
        assert claimed is not None
        store.set_usage(job.id, store.attempt(job.id), USAGE)
        store.finish(job.id, "finished")
        (JobFolder.of(settings, job.id).results).mkdir(parents=True)
        (JobFolder.of(settings, job.id).results / "r.tif").write_bytes(b"x" * 3000)
    store.create("carol", PROCESS)
    Workspace(settings.workspaces_dir, "bob").put("f.txt", io.BytesIO(b"y" * 5000))
    return settings


def test_usage_is_summed_per_user_from_the_store_and_the_folders(accounts):
    usage = {u.user_id: u for u in all_usage(accounts, JobStore(make_engine(accounts.job_store_url)))}
    assert set(usage) == {"ann", "bob", "carol", "root"}
    ann = usage["ann"]
    assert ann.jobs == 2 and ann.cpu_seconds == 240 and ann.result_bytes == 6000 and ann.workspace_bytes == 0
    assert ann.costs == pytest.approx(2 * 0.37)
    assert usage["bob"].workspace_bytes == 5000 and usage["carol"].jobs == 1


def test_terracube_users_prints_a_table_and_json(accounts, monkeypatch, capsys):
    for name, value in accounts.as_environment().items():
        monkeypatch.setenv(name, value)
    assert main(["users"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["user", "roles", "jobs", "active", "cpu", "s", "results", "workspace", "costs"]
    ann = next(line for line in lines if line.startswith("ann "))
    assert "240.0" in ann and human_bytes(6000) in ann and "0.74 EUR" in ann
    assert next(line for line in lines if line.startswith("root ")).split()[1] == "user,admin"
    assert main(["users", "--json"]) == 0
    rows = {row["user_id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["ann"]["result_bytes"] == 6000 and rows["bob"]["workspace_bytes"] == 5000
    assert rows["ann"]["currency"] == "EUR"
