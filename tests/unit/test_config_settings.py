"""Settings layering: defaults < config file < environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysisd.config import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_STORE,
    ConfigError,
    Quota,
    load_settings,
)


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


def test_teams_settings_file_reads_egress_env_secrets_and_quota(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "egress: ['https://*.corp.example']\n"
        "maxResponseBytes: 2048\n"
        "namespaces:\n"
        "  shop:\n"
        "    egress: ['http://prometheus.shop:9090', 'https://api.example.com/v1']\n"
        "    envSecrets: true\n"
        "    maxResponseBytes: 1024\n"
        "    quota: {activeRuns: 50, measurementsPerSecond: 2.5, metricsPerRun: 20,"
        " minInterval: 30s}\n"
        "  payments: {}\n"
    )
    settings = load_settings({"config": str(config)}, {})
    shop = settings.namespace("shop")
    assert shop.egress == ("http://prometheus.shop:9090", "https://api.example.com/v1")
    assert shop.env_secrets is True
    assert shop.max_response_bytes == 1024
    assert shop.quota == Quota(
        active_runs=50, measurements_per_second=2.5, metrics_per_run=20, min_interval=30.0
    )
    payments = settings.namespace("payments")
    assert payments.egress == ("https://*.corp.example",)  # the top-level default
    assert payments.env_secrets is False
    assert payments.max_response_bytes == 2048
    assert payments.quota == Quota()
    assert settings.namespace("unlisted") == payments


def test_without_a_settings_file_namespaces_get_the_open_defaults() -> None:
    ns = load_settings({}, {}).namespace("any")
    assert ns.egress is None
    assert ns.env_secrets is False
    assert ns.max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("egress: http://a\n", "egress: expected a list"),
        ("egress: ['ftp://a']\n", "egress[0]: 'ftp://a': scheme must be http or https"),
        ("egress: ['http://a.*.b']\n", "egress[0]"),
        ("namespaces: [a]\n", "namespaces: expected a mapping"),
        ("namespaces: {shop: {egres: []}}\n", "namespaces.shop.egres: unknown setting"),
        ("namespaces: {shop: {egress: ['x']}}\n", "namespaces.shop.egress[0]"),
        ("namespaces: {shop: {envSecrets: 'yes'}}\n", "namespaces.shop.envSecrets"),
        ("namespaces: {shop: {quota: {activeRuns: 0}}}\n", "namespaces.shop.quota.activeRuns"),
        ("namespaces: {shop: {quota: {runs: 1}}}\n", "namespaces.shop.quota.runs: unknown"),
        (
            "namespaces: {shop: {quota: {minInterval: soon}}}\n",
            "namespaces.shop.quota.minInterval",
        ),
        (
            "namespaces: {shop: {quota: {measurementsPerSecond: -1}}}\n",
            "namespaces.shop.quota.measurementsPerSecond",
        ),
        ("namespaces: {shop: {maxResponseBytes: big}}\n", "namespaces.shop.maxResponseBytes"),
    ],
)
def test_bad_teams_settings_name_the_key(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings({"config": str(config)}, {})
    assert fragment in str(info.value)
