"""The settings file's `accounts` and `kayenta` keys (the Kayenta front door)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysisd.config import ConfigError, load_config_file


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    return path


def test_accounts_and_kayenta_namespaces(tmp_path: Path) -> None:
    values = load_config_file(
        write(
            tmp_path,
            """
accounts:
  prom-main: {prometheus: {address: "http://127.0.0.1:9090"}}
  dd: {datadog: {address: "http://127.0.0.1:1", apiKey: k}}
  cw: {cloudWatch: {region: us-east-1}}
kayenta:
  namespace: shared
  applications: {checkout: shop}
""",
        )
    )
    accounts = values["accounts"]
    assert [(a.name, a.kind) for a in accounts.values()] == [
        ("prom-main", "prometheus"),
        ("dd", "datadog"),
        ("cw", "cloudwatch"),
    ]
    assert accounts["prom-main"].config == {"address": "http://127.0.0.1:9090"}
    kayenta = values["kayenta"]
    assert kayenta.namespace_for("checkout") == "shop"
    assert kayenta.namespace_for("other") == "shared"
    assert kayenta.namespace_for(None) == "shared"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("accounts: [x]", "accounts:"),
        ("accounts: {a: {graphite: {}}}", "accounts.a.graphite"),
        ("accounts: {a: {prometheus: 1}}", "accounts.a.prometheus"),
        ("accounts: {a: {prometheus: {}, datadog: {}}}", "accounts.a:"),
        ("kayenta: {namespace: ''}", "kayenta.namespace"),
        ("kayenta: {applications: {x: 3}}", "kayenta.applications"),
        ("kayenta: {namespaces: x}", "kayenta.namespaces"),
    ],
)
def test_bad_accounts_and_kayenta_settings_name_the_key(
    tmp_path: Path, text: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        load_config_file(write(tmp_path, text))
