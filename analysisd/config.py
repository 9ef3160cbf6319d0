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
ENV_SETTINGS = ("host", "port", "store", "secrets_dir", "config", "replica_id", "allow_anonymous")


DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024


class ConfigError(AnalysisdError, ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class Quota:
    """A namespace's limits (DESIGN.md §7.1); None = not limited by the settings file."""

    active_runs: int | None = None
    measurements_per_second: float | None = None
    metrics_per_run: int | None = None
    min_interval: float | None = None  # seconds (the file says "1s", Go duration syntax)


@dataclass(frozen=True, slots=True)
class NamespaceSettings:
    """`namespaces.<ns>` of the settings file, or the defaults for an unlisted namespace."""

    # URL prefixes this namespace's providers and callbacks may reach; None = the
    # top-level `egress`, and without that everything but link-local and the daemon.
    egress: tuple[str, ...] | None = None
    env_secrets: bool = False  # may its runs read ANALYSISD_SECRET_... variables
    quota: Quota = field(default_factory=Quota)
    # Largest provider response read (bytes); None = the top-level maxResponseBytes.
    max_response_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A daemon-wide webhook that receives every run's events."""

    url: str
    secret: str | None = None  # secret name; its key `hmac-key` signs the body
    types: tuple[str, ...] = ()  # empty: every event type


ACCOUNT_KINDS = {"prometheus": "prometheus", "datadog": "datadog", "cloudWatch": "cloudwatch"}


@dataclass(frozen=True, slots=True)
class Account:
    """`accounts.<name>`: a metrics account the Kayenta front door fetches through, as a
    provider kind and its block (e.g. prometheus + {address: ...})."""

    name: str
    kind: str  # a provider kind: prometheus, datadog, cloudwatch
    config: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class KayentaSettings:
    """`kayenta`: the namespace the Kayenta API keeps configs and runs in, by application
    (`applications`), else `namespace`."""

    namespace: str = "default"
    applications: Mapping[str, str] = field(default_factory=dict)

    def namespace_for(self, application: str | None) -> str:
        if application and application in self.applications:
            return self.applications[application]
        return self.namespace


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    store: str = DEFAULT_STORE
    secrets_dir: str | None = None
    config: str | None = None
    # token -> namespaces it may use ("*" = all, including cluster templates). Empty: open API.
    tokens: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Serving on a non-loopback address with no tokens must be asked for explicitly.
    allow_anonymous: bool = False
    subscriptions: tuple[Subscription, ...] = ()
    max_body_bytes: int = 1024 * 1024
    max_active_runs_per_namespace: int = 1000
    shutdown_grace: float = 30.0
    measurement_timeout: float = 60.0
    # The cap for a measurement that ends on its own terms (a Job metric: the provider
    # class says OWN_DEADLINE), which measurement_timeout does not cut off: a Job that
    # never ends must not hold a measurement worker for ever.
    long_measurement_timeout: float = 6 * 3600.0
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
    # Teams (DESIGN.md §7.1): egress for namespaces not listed, and per-namespace settings.
    egress: tuple[str, ...] | None = None
    namespaces: Mapping[str, NamespaceSettings] = field(default_factory=dict)
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    # The Kayenta front door (DESIGN.md §7.2): metrics accounts and namespaces.
    accounts: Mapping[str, Account] = field(default_factory=dict)
    kayenta: KayentaSettings = field(default_factory=KayentaSettings)

    # namespace()'s answers (Settings never change: a new configuration is a new Settings,
    # with an empty memo; `replace` gives a copy its own). Not a field anyone sets.
    _effective: dict[str, NamespaceSettings] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def namespace(self, name: str) -> NamespaceSettings:
        """One namespace's effective settings: its entry, top-level defaults filled in."""
        found = self._effective.get(name)
        if found is not None:
            return found
        own = self.namespaces.get(name, NamespaceSettings())
        found = replace(
            own,
            egress=own.egress if own.egress is not None else self.egress,
            max_response_bytes=own.max_response_bytes or self.max_response_bytes,
        )
        if len(self._effective) < _EFFECTIVE_MAX:  # names come from requests: bounded
            self._effective[name] = found
        return found


_EFFECTIVE_MAX = 4096


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
    "allowAnonymous": "allow_anonymous",
    "maxBodyBytes": "max_body_bytes",
    "maxActiveRunsPerNamespace": "max_active_runs_per_namespace",
    "shutdownGrace": "shutdown_grace",
    "measurementTimeout": "measurement_timeout",
    "longMeasurementTimeout": "long_measurement_timeout",
    "maxConcurrency": "max_concurrency",
    "webhookTimeout": "webhook_timeout",
    "webhookMaxAge": "webhook_max_age",
    "webhookBackoffBase": "webhook_backoff_base",
    "webhookBackoffMax": "webhook_backoff_max",
    "webhookPollInterval": "webhook_poll_interval",
    "replicaId": "replica_id",
    "leaseDuration": "lease_duration",
    "ttlCheckInterval": "ttl_check_interval",
    "maxResponseBytes": "max_response_bytes",
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
    if value.get("kubernetes") is not None:
        # The job provider's cluster, checked now so a bad block stops start-up.
        from providers.job.cluster import ClusterSettings

        try:
            ClusterSettings.from_mapping(value["kubernetes"])
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return dict(value)


def _egress(where: str, value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{where}: expected a list of URL prefixes scheme://host[:port][/path]")
    from providers.egress import parse_prefix

    for i, item in enumerate(value):
        try:
            parse_prefix(item)
        except ValueError as exc:
            raise ConfigError(f"{where}[{i}]: {exc}") from None
    return tuple(value)


def _positive_int(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _positive_number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{where}: expected a positive number, got {value!r}")
    return float(value)


def _duration(where: str, value: Any) -> float:
    from analysisd.durations import DurationError, parse_seconds

    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_seconds(value)
        except DurationError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    else:
        raise ConfigError(f'{where}: expected a duration such as "1s", got {value!r}')
    if seconds < 0:
        raise ConfigError(f"{where}: must not be negative, got {value!r}")
    return seconds


_QUOTA_KEYS = {
    "activeRuns": ("active_runs", _positive_int),
    "measurementsPerSecond": ("measurements_per_second", _positive_number),
    "metricsPerRun": ("metrics_per_run", _positive_int),
    "minInterval": ("min_interval", _duration),
}


def _quota(where: str, value: Any) -> Quota:
    if value is None:
        return Quota()
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping ({', '.join(_QUOTA_KEYS)})")
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key not in _QUOTA_KEYS:
            raise ConfigError(f"{where}.{key}: unknown quota (known: {', '.join(_QUOTA_KEYS)})")
        name, check = _QUOTA_KEYS[key]
        out[name] = None if item is None else check(f"{where}.{key}", item)
    return Quota(**out)


_NAMESPACE_KEYS = ("egress", "envSecrets", "quota", "maxResponseBytes")


def _namespaces(value: Any) -> dict[str, NamespaceSettings]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("namespaces: expected a mapping of namespace -> settings")
    out: dict[str, NamespaceSettings] = {}
    for name, block in value.items():
        where = f"namespaces.{name}"
        if block is None:
            block = {}
        if not isinstance(block, Mapping):
            raise ConfigError(f"{where}: expected a mapping ({', '.join(_NAMESPACE_KEYS)})")
        for key in block:
            if key not in _NAMESPACE_KEYS:
                raise ConfigError(
                    f"{where}.{key}: unknown setting (known: {', '.join(_NAMESPACE_KEYS)})"
                )
        env_secrets = block.get("envSecrets", False)
        if not isinstance(env_secrets, bool):
            raise ConfigError(f"{where}.envSecrets: expected true or false, got {env_secrets!r}")
        max_response = block.get("maxResponseBytes")
        out[str(name)] = NamespaceSettings(
            egress=_egress(f"{where}.egress", block.get("egress")),
            env_secrets=env_secrets,
            quota=_quota(f"{where}.quota", block.get("quota")),
            max_response_bytes=None
            if max_response is None
            else _positive_int(f"{where}.maxResponseBytes", max_response),
        )
    return out


def _accounts(value: Any) -> dict[str, Account]:
    if not isinstance(value, Mapping):
        raise ConfigError("accounts: expected a mapping of account name -> {prometheus: {...}}")
    out: dict[str, Account] = {}
    for name, block in value.items():
        where = f"accounts.{name}"
        if not isinstance(block, Mapping) or len(block) != 1:
            raise ConfigError(
                f"{where}: expected one of {', '.join(ACCOUNT_KINDS)} with its provider block"
            )
        [(key, config)] = block.items()
        if key not in ACCOUNT_KINDS:
            raise ConfigError(f"{where}.{key}: unknown kind (known: {', '.join(ACCOUNT_KINDS)})")
        if not isinstance(config, Mapping):
            raise ConfigError(f"{where}.{key}: expected the provider's block (a mapping)")
        out[str(name)] = Account(str(name), ACCOUNT_KINDS[key], dict(config))
    return out


def _kayenta(value: Any) -> KayentaSettings:
    if not isinstance(value, Mapping):
        raise ConfigError("kayenta: expected a mapping {namespace, applications}")
    unknown = set(value) - {"namespace", "applications"}
    if unknown:
        raise ConfigError(f"kayenta.{sorted(unknown)[0]}: unknown setting")
    namespace = value.get("namespace", "default")
    applications = value.get("applications") or {}
    if not isinstance(namespace, str) or not namespace:
        raise ConfigError("kayenta.namespace: expected a namespace name")
    if not isinstance(applications, Mapping) or not all(
        isinstance(v, str) and v for v in applications.values()
    ):
        raise ConfigError("kayenta.applications: expected a mapping of application -> namespace")
    return KayentaSettings(namespace, {str(k): str(v) for k, v in applications.items()})


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name}: expected true or false, got {value!r}")


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
        elif key == "egress":
            out[key] = _egress("egress", value)
        elif key == "allow_anonymous":
            out[key] = _bool(raw_key, value)
        elif key == "namespaces":
            out[key] = _namespaces(value)
        elif key == "max_response_bytes":
            out[key] = _positive_int(raw_key, value)
        elif key == "accounts":
            out[key] = _accounts(value)
        elif key == "kayenta":
            out[key] = _kayenta(value)
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
