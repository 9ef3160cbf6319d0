"""Settings layering: defaults < config file < environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysisd.config import DEFAULT_STORE, ConfigError, load_settings


def test_defaults_without_flags_env_or_file() -> None:
    settings = load_settings({}, {})
    assert (settings.host, settings.port, settings.store) == ("127.0.0.1", 8080, DEFAULT_STORE)
    assert settings.tokens == {}


def test_flags_beat_environment_and_environment_beats_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("port: 7000\nhost: 0.0.0.0\nstore: sqlite:///file.db\n")
    env = {"ANALYSISD_CONFIG": str(config), "ANALYSISD_PORT": "7100"}
    settings = load_settings({"port": None, "store": "sqlite:///flag.db"}, env)
    assert settings.host == "0.0.0.0"  # file
    assert settings.port == 7100  # env over file
    assert settings.store == "sqlite:///flag.db"  # flag over file


def test_tokens_and_subscriptions_from_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "tokens:\n  t1: [team-a, team-b]\n  admin: '*'\n"
        "subscriptions:\n  - url: http://127.0.0.1:9/hook\n    secret: hooks\n"
        "webhookMaxAge: 60\n"
    )
    settings = load_settings({"config": str(config)}, {})
    assert settings.tokens == {"t1": ("team-a", "team-b"), "admin": ("*",)}
    assert settings.subscriptions[0].url == "http://127.0.0.1:9/hook"
    assert settings.subscriptions[0].secret == "hooks"
    assert settings.webhook_max_age == 60.0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("port: eighty\n", "port"),
        ("nonsense: 1\n", "nonsense: unknown setting"),
        ("- a\n", "mapping at the top level"),
        ("tokens: [a]\n", "tokens"),
        ("subscriptions:\n  - secret: x\n", "subscriptions[0].url"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_bad_config_file_names_the_setting(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=None) as info:
        load_settings({"config": str(config)}, {})
    assert fragment in str(info.value)


def test_bad_port_from_environment_is_named() -> None:
    with pytest.raises(ConfigError, match="port"):
        load_settings({}, {"ANALYSISD_PORT": "99999"})


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file"):
        load_settings({"config": str(tmp_path / "absent.yaml")}, {})
