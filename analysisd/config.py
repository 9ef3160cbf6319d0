"""Daemon settings: defaults < config file (YAML) < environment < command-line flags."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from analysisd import AnalysisdError

DEFAULT_STORE = "sqlite:///analysisd.db"
ENV_PREFIX = "ANALYSISD_"
# Flags that are also environment variables (DESIGN.md §7); names are the field names.
ENV_SETTINGS = ("host", "port", "store", "secrets_dir", "config", "replica_id")


class ConfigError(AnalysisdError, ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """A daemon-wide webhook that receives every run's events."""

    url: str
    secret: str | None = None  # secret name; its key `hmac-key` signs the body
    types: tuple[str, ...] = ()  # empty: every event type


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    store: str = DEFAULT_STORE
    secrets_dir: str | None = None
    config: str | None = None
    # token -> namespaces it may use ("*" = all, including cluster templates). Empty: open API.
    tokens: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    subscriptions: tuple[Subscription, ...] = ()
    max_body_bytes: int = 1024 * 1024
    max_active_runs_per_namespace: int = 1000
    shutdown_grace: float = 30.0
    measurement_timeout: float = 60.0
    max_concurrency: int = 1000
    webhook_timeout: float = 10.0
    webhook_max_age: float = 24 * 3600.0
    webhook_backoff_base: float = 1.0
    webhook_backoff_max: float = 300.0
    webhook_poll_interval: float = 1.0
    # Replicas on one PostgreSQL database: this replica's lease owner id (default
    # hostname-pid-random) and how long a run's lease lasts without renewal.
    replica_id: str | None = None
    lease_duration: float = 30.0
    # How often completed runs are checked against their spec.ttlStrategy (0 disables).
    ttl_check_interval: float = 30.0
    # Provider settings; `limits` is providers.limits.LimitsConfig.from_mapping's input.
    providers: Mapping[str, Any] = field(default_factory=dict)


def _int(name: str, value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected an integer, got {value!r}") from None


def _float(name: str, value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: expected a number, got {value!r}") from None


_CAMEL = {
    "secretsDir": "secrets_dir",
    "maxBodyBytes": "max_body_bytes",
    "maxActiveRunsPerNamespace": "max_active_runs_per_namespace",
    "shutdownGrace": "shutdown_grace",
    "measurementTimeout": "measurement_timeout",
    "maxConcurrency": "max_concurrency",
    "webhookTimeout": "webhook_timeout",
    "webhookMaxAge": "webhook_max_age",
    "webhookBackoffBase": "webhook_backoff_base",
    "webhookBackoffMax": "webhook_backoff_max",
    "webhookPollInterval": "webhook_poll_interval",
    "replicaId": "replica_id",
    "leaseDuration": "lease_duration",
    "ttlCheckInterval": "ttl_check_interval",
}


def _tokens(value: Any) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("tokens: expected a mapping of token -> list of namespaces")
    out: dict[str, tuple[str, ...]] = {}
    for token, namespaces in value.items():
        if isinstance(namespaces, str):
            namespaces = [namespaces]
        if not isinstance(namespaces, Sequence) or not all(isinstance(n, str) for n in namespaces):
            # The token itself is a credential: never echo it.
            raise ConfigError("tokens: each token maps to a list of namespace names")
        out[str(token)] = tuple(namespaces)
    return out


def _subscriptions(value: Any) -> tuple[Subscription, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError("subscriptions: expected a list")
    subs = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("url"), str):
            raise ConfigError(f"subscriptions[{i}].url: required string")
        types = item.get("types") or ()
        subs.append(Subscription(item["url"], item.get("secret"), tuple(types)))
    return tuple(subs)


def _providers(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("providers: expected a mapping (e.g. providers.limits)")
    limits = value.get("limits")
    if limits is not None:
        if not isinstance(limits, Mapping):
            raise ConfigError("providers.limits: expected a mapping")
        from providers.limits import LimitsConfig  # checked now, so a bad value stops start-up

        try:
            LimitsConfig.from_mapping(limits)
        except (TypeError, ValueError) as exc:
            text = str(exc)
            where = "providers." if text.startswith("limits") else "providers.limits: "
            raise ConfigError(where + text) from None
    return dict(value)


def _coerce(values: Mapping[str, Any]) -> dict[str, Any]:
    known = {f.name: f for f in fields(Settings)}
    out: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = _CAMEL.get(raw_key, raw_key)
        if key not in known:
            raise ConfigError(f"{raw_key}: unknown setting")
        if key == "tokens":
            out[key] = _tokens(value)
        elif key == "subscriptions":
            out[key] = _subscriptions(value)
        elif key == "providers":
            out[key] = _providers(value)
        elif key in ("port", "max_body_bytes", "max_active_runs_per_namespace", "max_concurrency"):
            out[key] = _int(raw_key, value)
        elif isinstance(known[key].default, float):
            out[key] = _float(raw_key, value)
        else:
            out[key] = None if value is None else str(value)
    return out


def load_config_file(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {path}: expected a mapping at the top level")
    return _coerce(data)


def load_settings(
    flags: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Merge the layers; `flags` holds only the flags the user actually gave (None = unset)."""
    env = os.environ if environ is None else environ
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    from_env = {
        name: env[ENV_PREFIX + name.upper()]
        for name in ENV_SETTINGS
        if env.get(ENV_PREFIX + name.upper())
    }
    config_path = given.get("config") or from_env.get("config")
    layered: dict[str, Any] = {}
    if config_path:
        layered.update(load_config_file(config_path))
    layered.update(_coerce(from_env))
    layered.update(_coerce(given))
    settings = replace(Settings(), **layered)
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port: {settings.port} is not a TCP port")
    if settings.lease_duration <= 0:
        raise ConfigError(f"leaseDuration: must be > 0 seconds, got {settings.lease_duration}")
    return settings
