"""Settings from environment variables and TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.settings import Settings, SettingsError


def test_defaults_give_the_embedded_setup():
    settings = Settings.from_env({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.data_dir == Path("data")
    assert settings.users == {"demo": "demo"}
    assert settings.stac == ()


def test_environment_variables_are_parsed():
    settings = Settings.from_env({
        "TERRACUBE_PORT": "9000",
        "TERRACUBE_USERS": "a:1, b:2",
        "TERRACUBE_STAC": "/x/catalog.json, https://s/collections/c ,",
        "TERRACUBE_DEMO": "false",
    })
    assert settings.port == 9000
    assert settings.users == {"a": "1", "b": "2"}
    assert settings.stac == ("/x/catalog.json", "https://s/collections/c")
    assert settings.demo is False


def test_toml_file_is_read_and_environment_wins(tmp_path):
    config = tmp_path / "terracube.toml"
    config.write_text('port = 7000\ntitle = "From TOML"\n')
    settings = Settings.from_env({"TERRACUBE_CONFIG": str(config), "TERRACUBE_PORT": "7001"})
    assert settings.title == "From TOML"
    assert settings.port == 7001


@pytest.mark.parametrize("env", [{"TERRACUBE_PORT": "eighty"}, {"TERRACUBE_USERS": "nopassword"}])
def test_invalid_values_name_the_variable(env):
    with pytest.raises(SettingsError, match=next(iter(env))):
        Settings.from_env(env)


def test_token_secret_is_generated_once_and_kept(tmp_path):
    settings = Settings(data_dir=tmp_path)
    first = settings.token_secret()
    assert len(first) > 40
    assert Settings(data_dir=tmp_path).token_secret() == first
    assert (tmp_path / "secret").stat().st_mode & 0o077 == 0


def test_a_short_token_secret_is_refused():
    with pytest.raises(SettingsError, match="TERRACUBE_SECRET.*32 characters"):
        Settings.from_env({"TERRACUBE_SECRET": "short"})


def test_settings_travel_whole_to_another_process():
    settings = Settings(users={"a,b": "p:w,x", "c": "d"}, stac=("/x/catalog.json", "https://h/collections/c,1"),
                        demo=False, dask_scheduler="tcp://h:8786", max_running_jobs=5, secret="s" * 40,
                        sync_max_pixels=123, embedded_runner=False)
    again = Settings.from_env(settings.as_environment())
    assert again == Settings(**{**settings.__dict__, "data_dir": settings.data_dir.resolve()})
