"""Configuration loading: precedence and errors that name the source and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsvault import __version__
from newsvault.config import Config, load_config
from newsvault.errors import ConfigError


def test_defaults_need_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.archive.url == "var/archive"
    assert config.state_dir == Path("var")
    assert (config.sites_dir / "sample.toml").is_file()


def test_precedence_flag_over_env_over_file(tmp_path: Path) -> None:
    path = tmp_path / "newsvault.toml"
    path.write_text('[archive]\nurl = "from-file"\n[state]\ndir = "file-state"\n', encoding="utf-8")
    config = load_config(path, env={"NEWSVAULT_ARCHIVE": "from-env"})
    assert config.archive.url == "from-env"
    assert config.state.dir == "file-state"
    config = load_config(path, env={"NEWSVAULT_ARCHIVE": "from-env"}, overrides={"archive.url": "flag"})
    assert config.archive.url == "flag"


def test_every_key_has_an_environment_variable(tmp_path: Path) -> None:
    path = tmp_path / "newsvault.toml"
    path.write_text('[schedules.sample.articles]\ncron = "*/5 * * * *"\n', encoding="utf-8")
    config = load_config(
        path,
        env={
            "NEWSVAULT_DAEMON_MISFIRE_GRACE_SECONDS": "42",
            "NEWSVAULT_SCHEDULES_SAMPLE_ARTICLES_CRON": "0 * * * *",
            "NEWSVAULT_CRAWL_OBEY_ROBOTS": "false",
        },
    )
    assert config.daemon.misfire_grace_seconds == 42
    assert config.schedules["sample"]["articles"].cron == "0 * * * *"
    assert config.crawl.obey_robots is False


def test_bad_value_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[daemon]\nmisfire_grace_seconds = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(path) in str(info.value)
    assert "daemon.misfire_grace_seconds" in str(info.value)


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[archive]\nurll = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"archive\.urll: unknown key"):
        load_config(path, env={})


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$NEWSVAULT_DAEMON_METRICS_PORT: daemon.metrics_port"):
        load_config(env={"NEWSVAULT_DAEMON_METRICS_PORT": "http"})


def test_broken_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[archive\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path, env={})


def test_example_config_loads_and_names_every_key() -> None:
    example = Path(__file__).resolve().parent.parent / "newsvault.example.toml"
    config = load_config(example, env={})
    assert config.schedules["sample"]["articles"].cron
    text = example.read_text(encoding="utf-8")
    for section in ("archive", "state", "sites", "crawl", "revisit", "health", "alerts", "daemon", "web", "cluster"):
        model = getattr(config, section)
        for key in type(model).model_fields:
            # Optional keys appear commented out, with an example value.
            assert f"\n{key} =" in text or f"\n# {key} =" in text, f"{section}.{key} missing from the example"


def test_settings_py_and_the_config_agree_on_every_default() -> None:
    import settings

    defaults = Config().scrapy_settings()
    for key, value in defaults.items():
        assert getattr(settings, key) == value, key
    # So `scrapy crawl` (settings.py alone) and `newsvault crawl` send the same User-Agent.
    assert settings.USER_AGENT == Config().crawl.user_agent and __version__ in settings.USER_AGENT


def test_a_cluster_url_must_be_postgresql_and_is_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "newsvault.toml"
    path.write_text('[cluster]\nurl = "mysql://nv:hunter2-secret@db/nv"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    message = str(caught.value)
    assert "cluster.url" in message and str(path) in message and "PostgreSQL" in message
    assert "hunter2" not in message
    config = load_config(None, env={"NEWSVAULT_CLUSTER_URL": "postgresql://nv:hunter2-secret@db/nv"})
    assert config.cluster.url_value == "postgresql://nv:hunter2-secret@db/nv"
    assert "hunter2" not in repr(config) and "hunter2" not in str(config.cluster)
    assert config.scrapy_settings()["NEWSVAULT_STATE_URL"] == config.cluster.url_value


def test_no_console_extension_is_even_loaded() -> None:
    """Telnet and remote control are off and out of the extension list (loading the latter imports aiohttp's server)."""
    from scrapy.settings import Settings
    from scrapy.utils.conf import build_component_list

    import settings as project

    crawl_settings = Settings()
    crawl_settings.setmodule(project, priority="project")
    crawl_settings.setdict(Config().scrapy_settings(), priority="cmdline")
    loaded = build_component_list(crawl_settings.getwithbase("EXTENSIONS"))
    assert "scrapy.extensions.corestats.CoreStats" in loaded
    assert not [path for path in loaded if path.endswith(("TelnetConsole", "RemoteControl"))], loaded
