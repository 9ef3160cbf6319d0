"""Argo's ``plugin`` provider kind: Go RPC plugins, which analysisd cannot run.

Argo Rollouts downloads a plugin binary named in its ConfigMap and talks to it over
hashicorp/go-plugin's net/rpc; the metric's block is ``plugin: {<plugin name>:
<its config>}``. analysisd runs no foreign binaries, so a plugin metric is refused
at the door (``analysisd lint``, ``analysisd run``, the API) and, should a run reach
the engine anyway, each measurement is an Error: both say so in the one sentence
of ``unsupported_message``, naming the plugin and pointing to the compatibility page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, NoReturn

from providers.base import Provider, ProviderUnsupported, Reading, SecretLookup

KIND = "plugin"
DOCS = "docs/compatibility.md#plugin-metrics"


def plugin_names(config: Mapping[str, Any]) -> list[str]:
    return sorted(str(name) for name in config)


def unsupported_message(config: Mapping[str, Any]) -> str:
    """The one sentence: which plugin, that analysisd cannot run it, where to read more."""
    names = plugin_names(config)
    named = ("plugin " + " and ".join(repr(n) for n in names)) if names else "no plugin named"
    return (
        f"provider kind 'plugin' ({named}) is not run by analysisd: Argo Rollouts runs "
        f"metric plugins as Go binaries over RPC, which analysisd cannot; see {DOCS}"
    )


def _refuse(config: Mapping[str, Any]) -> NoReturn:
    raise ProviderUnsupported(unsupported_message(config), provider=KIND)


class PluginProvider:
    """Never measures: every entry point raises ProviderUnsupported with the sentence."""

    kind: ClassVar[str] = KIND

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> None:
        _refuse(config)

    @classmethod
    def pool_key(cls, config: Mapping[str, Any], secrets: SecretLookup) -> tuple[Any, ...]:
        _refuse(config)

    @classmethod
    def create(cls, config: Mapping[str, Any], secrets: SecretLookup) -> Provider:
        _refuse(config)

    @classmethod
    def request_key(cls, config: Mapping[str, Any]) -> tuple[Any, ...]:
        _refuse(config)

    async def measure(self, config: Mapping[str, Any]) -> Reading:
        _refuse(config)

    async def series(
        self, config: Mapping[str, Any], query: str, start: datetime, end: datetime, step: float
    ) -> list[float]:
        _refuse(config)

    async def aclose(self) -> None:
        return None
