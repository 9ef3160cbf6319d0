"""One daemon, many teams: what each namespace's runs and callbacks may use (DESIGN.md §7.1).

Built once from the settings by the daemon and handed down as data and callables:
- `secrets`: DIR/<namespace>/<secret>/<key>, environment secrets only where
  `namespaces.<ns>.envSecrets` grants them (analysisd.secrets.NamespacedSecretSource);
- `scope(ns)`: a namespace's secrets and RequestPolicy (egress, response cap) for
  the provider registry (providers.registry.Scope);
- `webhook_route(row)`: how an outbox row is sent — a run's callback under its
  namespace's secrets and egress, an operator's subscription under the operator's.

The daemon's own listen addresses are refused to every namespace; they are
filled in when the daemon has bound (`listening`), policies built before see them.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

from analysisd.config import Settings
from analysisd.outbox import ANSWER_MAX_BYTES, Routing
from analysisd.secrets import EnvSecretSource, NamespacedSecretSource, SecretSource, scoped
from analysisd.store.records import OutboxRow
from providers.egress import EgressPolicy, ListenAddresses
from providers.http import RequestPolicy
from providers.registry import Scope


class Teams:
    """Per-namespace secrets, egress and caps, from one Settings."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.own = ListenAddresses()
        self._env = EnvSecretSource(environ)
        self.secrets = NamespacedSecretSource(
            settings.secrets_dir, self._env, lambda ns: settings.namespace(ns).env_secrets
        )
        self._subscriptions = {(s.url, s.secret) for s in settings.subscriptions}
        self._egress: dict[str, EgressPolicy] = {}
        self._scopes: dict[str, Scope] = {}
        self._routes: dict[str, Routing] = {}
        self._operator = Routing(
            self._env, RequestPolicy(EgressPolicy.build("", None, self.own), ANSWER_MAX_BYTES)
        )

    def listening(self, host: str, port: int) -> None:
        """The daemon is bound: refuse its own address(es) to every namespace from now on."""
        addresses = [(host, port)]
        if host in ("0.0.0.0", "::", ""):
            # Every interface: the host's own addresses reach it too.
            try:
                infos = socket.getaddrinfo(socket.gethostname(), None)
            except OSError:
                infos = []
            addresses += [(str(info[4][0]), port) for info in infos]
        self.own.update(addresses)

    def egress(self, namespace: str) -> EgressPolicy:
        found = self._egress.get(namespace)
        if found is None:
            prefixes = self.settings.namespace(namespace).egress
            found = self._egress[namespace] = EgressPolicy.build(namespace, prefixes, self.own)
        return found

    def request_policy(self, namespace: str) -> RequestPolicy:
        ns = self.settings.namespace(namespace)
        listed = namespace in self.settings.namespaces and (
            self.settings.namespaces[namespace].max_response_bytes is not None
        )
        setting = f"namespaces.{namespace}.maxResponseBytes" if listed else "maxResponseBytes"
        assert ns.max_response_bytes is not None  # Settings.namespace fills it in
        return RequestPolicy(self.egress(namespace), ns.max_response_bytes, setting)

    def scope(self, namespace: str) -> Scope:
        """The provider registry's view of one namespace (providers.registry.Scope)."""
        found = self._scopes.get(namespace)
        if found is None:
            source = self.secrets.for_namespace(namespace)
            found = Scope(namespace, source.get, self.request_policy(namespace))
            self._scopes[namespace] = found
        return found

    def namespace_secrets(self, namespace: str) -> SecretSource:
        return scoped(self.secrets, namespace)

    def webhook_route(self, row: OutboxRow) -> Routing:
        """A subscription is the operator's; every other target is the run's own callback."""
        if (row.target, row.secret_name) in self._subscriptions:
            return self._operator
        found = self._routes.get(row.namespace)
        if found is None:
            policy = RequestPolicy(self.egress(row.namespace), ANSWER_MAX_BYTES, "webhook answers")
            found = Routing(self.secrets.for_namespace(row.namespace), policy)
            self._routes[row.namespace] = found
        return found
