"""The compose file describes the documented services with commands that exist."""

from __future__ import annotations

import yaml

from tests.conftest import REPO


def test_compose_has_the_documented_services():
    compose = yaml.safe_load((REPO / "docker" / "compose.yaml").read_text())
    assert set(compose["services"]) == {"db", "demo", "scheduler", "worker1", "worker2", "runner", "api"}
    api = compose["services"]["api"]
    assert api["command"] == ["serve"] and api["environment"]["TERRACUBE_EMBEDDED_RUNNER"] == "false"
    assert compose["services"]["runner"]["command"] == ["worker"]
    for name in ("api", "runner", "worker1", "worker2"):
        assert "results:/data" in compose["services"][name]["volumes"]


def test_the_cli_commands_used_by_the_images_exist():
    from backend.cli import main

    for command in (["serve", "--help"], ["worker", "--help"], ["demo", "--help"]):
        try:
            main(command)
        except SystemExit as exit_:
            assert exit_.code == 0
