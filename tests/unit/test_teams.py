"""analysisd.teams: what each namespace's providers and callbacks get from the settings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from analysisd.config import NamespaceSettings, Settings, Subscription
from analysisd.outbox import HMAC_KEY
from analysisd.store.records import OutboxRow
from analysisd.teams import Teams
from providers.egress import EgressRefused

ENV = {"ANALYSISD_SECRET_AUDIT_HMAC_KEY": "operator-key", "ANALYSISD_SECRET_X_Y": "env-xy"}


def teams(tmp_path: Path) -> Teams:
    (tmp_path / "shop" / "audit").mkdir(parents=True)
    (tmp_path / "shop" / "audit" / HMAC_KEY).write_text("shop-key")
    settings = replace(
        Settings(),
        secrets_dir=str(tmp_path),
        egress=("https://*.corp.example",),
        subscriptions=(Subscription("https://audit.example/hook", "audit"),),
        namespaces={
            "shop": NamespaceSettings(egress=("http://prom.shop:9090",), max_response_bytes=2048),
            "ops": NamespaceSettings(env_secrets=True),
        },
    )
    return Teams(settings, ENV)


def row(target: str, namespace: str = "shop", secret: str | None = "audit") -> OutboxRow:
    return OutboxRow("e", target, secret, namespace, "r", "t", "{}")


def test_a_runs_callback_uses_its_namespace_and_a_subscription_the_operator(
    tmp_path: Path,
) -> None:
    t = teams(tmp_path)
    callback = t.webhook_route(row("http://prom.shop:9090/hook"))
    assert callback.secrets.get("audit", HMAC_KEY) == "shop-key"
    callback.policy.egress.check_url("http://prom.shop:9090/hook")
    with pytest.raises(EgressRefused):
        callback.policy.egress.check_url("https://audit.example/hook")
    operator = t.webhook_route(row("https://audit.example/hook"))
    assert operator.secrets.get("audit", HMAC_KEY) == "operator-key"
    operator.policy.egress.check_url("https://audit.example/hook")
    # Same URL, another secret name: not the subscription, so the run's namespace.
    assert t.webhook_route(row("https://audit.example/hook", secret="x")) is not operator


def test_scopes_carry_secrets_egress_and_the_cap_with_its_setting(tmp_path: Path) -> None:
    t = teams(tmp_path)
    shop, ops, other = t.scope("shop"), t.scope("ops"), t.scope("other")
    assert shop.secrets("audit", HMAC_KEY) == "shop-key"
    # envSecrets grants the whole environment (the operator's keys included).
    assert ops.secrets("audit", HMAC_KEY) == "operator-key"
    assert ops.secrets("x", "y") == "env-xy" and shop.secrets("x", "y") is None
    assert (shop.policy.max_response_bytes, shop.policy.cap_setting) == (
        2048,
        "namespaces.shop.maxResponseBytes",
    )
    assert other.policy.cap_setting == "maxResponseBytes"
    other.policy.egress.check_url("https://prom.corp.example/api")  # the top-level default
    with pytest.raises(EgressRefused):
        other.policy.egress.check_url("http://prom.shop:9090/api")


def test_the_daemons_own_address_is_refused_once_it_has_bound(tmp_path: Path) -> None:
    t = teams(tmp_path)
    policy = t.scope("ops").policy.egress  # built before the daemon binds
    policy.check_address("127.0.0.1", 8080)
    t.listening("0.0.0.0", 8080)
    for ip in ("127.0.0.1", "0.0.0.0", "::1"):
        with pytest.raises(EgressRefused, match="own listen address"):
            policy.check_address(ip, 8080)
    policy.check_address("127.0.0.1", 8081)
