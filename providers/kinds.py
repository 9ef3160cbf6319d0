"""Provider kinds: Argo kind -> the class that runs it, loaded by dotted path on first use.

Apart from the registry (providers.registry re-exports these names) so that checking a
block (`analysisd lint`, the API's door) loads neither the registry's runtime (limits,
coalescing, metrics, asyncio) nor any provider module but the kind's own.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, cast

from providers.base import ProviderClass, ProviderConfigError, ProviderUnsupported

# Argo kind -> "module:Class". Imported on first use only.
PROVIDER_CLASSES: Mapping[str, str] = {
    "web": "providers.web:WebProvider",
    "prometheus": "providers.prometheus:PrometheusProvider",
    "datadog": "providers.datadog:DatadogProvider",
    "cloudWatch": "providers.cloudwatch:CloudWatchProvider",
    "job": "providers.job:JobProvider",
    # Registered only to say why it cannot run (the plugin's name, docs/compatibility.md).
    "plugin": "providers.plugin:PluginProvider",
    "graphite": "providers.graphite:GraphiteProvider",
    "influxdb": "providers.influxdb:InfluxdbProvider",
    "newRelic": "providers.newrelic:NewRelicProvider",
    "wavefront": "providers.wavefront:WavefrontProvider",
    "skywalking": "providers.skywalking:SkyWalkingProvider",
    "kayenta": "providers.kayenta:KayentaProvider",
}
# Argo kinds we know of and do not run (named so the message can say so plainly).
UNSUPPORTED_KINDS = frozenset({"plugin"})


def load_provider_class(kind: str, paths: Mapping[str, str] = PROVIDER_CLASSES) -> ProviderClass:
    """The class for an Argo provider kind, imported by its dotted path (no instance made)."""
    path = paths.get(kind)
    if path is None:
        known = "an Argo provider analysisd does not run" if kind in UNSUPPORTED_KINDS else ""
        detail = f" ({known})" if known else ""
        raise ProviderUnsupported(
            f"provider kind {kind!r} is not supported by analysisd{detail}; "
            f"supported: {', '.join(sorted(k for k in paths if k not in UNSUPPORTED_KINDS))}",
            provider=kind,
        )
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
        return cast(ProviderClass, getattr(module, attr))
    except (ImportError, AttributeError) as exc:
        raise ProviderUnsupported(
            f"provider kind {kind!r} is unavailable: cannot load {path} "
            f"({type(exc).__name__}: {exc})",
            provider=kind,
        ) from exc


def check_block(
    kind: str, config: Mapping[str, Any], paths: Mapping[str, str] = PROVIDER_CLASSES
) -> None:
    """Have the kind's class parse its block as bind/create would, without opening a pool.

    Raises ProviderUnsupported for a kind analysisd does not run, ProviderConfigError
    (with `field`, the path inside the block) for a block that can never be measured.
    """
    cls = load_provider_class(kind, paths)
    check = getattr(cls, "check", None)
    if not callable(check):
        return  # a class without a static check is checked by its first measurement
    try:
        check(config)
    except ProviderConfigError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # A block of the wrong shape deep inside (a number where a list belongs).
        raise ProviderConfigError(
            f"{kind}: provider block is malformed ({type(exc).__name__}: {exc})", provider=kind
        ) from None
