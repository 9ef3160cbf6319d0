"""Where secretKeyRef argument values come from (Kubernetes Secrets stand-ins).

- DirectorySecretSource: `<dir>/<secret>/<key>` files, the layout of a Secret
  mounted as a volume (one directory per secret, one file per key).
- EnvSecretSource: `ANALYSISD_SECRET_<NAME>_<KEY>`, upper-cased, every character
  that is not a letter or digit replaced by `_`.
- ChainSecretSource: the first source that knows the secret wins.
- NamespacedSecretSource: a shared daemon's secrets (DESIGN.md §7.1). The
  directory holds `<dir>/<namespace>/<secret>/<key>`; a run sees only its own
  namespace's folder (`scoped(source, namespace)`), and environment secrets
  only where the settings file grants `namespaces.<ns>.envSecrets: true`.
  Unscoped, it knows no secret at all: a lookup that forgot its namespace
  finds nothing rather than everything.

`get` returns None when the secret or key is absent; `has_secret` (optional on a
source) lets argument resolution tell "no such secret" from "no such key", which
Argo reports differently.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from providers.gocompat import go_quote, json_string

ENV_PREFIX = "ANALYSISD_SECRET_"
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")
# Kubernetes object names and Secret keys; refusing anything else also keeps a
# reference from escaping the secrets directory ("..", "/").
_SAFE_PART = re.compile(r"^[A-Za-z0-9._-]+$")


@runtime_checkable
class SecretSource(Protocol):
    def get(self, name: str, key: str) -> str | None: ...


def _safe(part: str) -> bool:
    return bool(_SAFE_PART.match(part)) and part not in (".", "..")


class DirectorySecretSource:
    """Secrets mounted as files: `<root>/<secret>/<key>`.

    One trailing newline is dropped: files written with `echo` end in one, and a
    credential with a stray newline fails in confusing ways. Reads are small,
    synchronous and happen once per run preparation.
    """

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def has_secret(self, name: str) -> bool:
        return _safe(name) and (self.root / name).is_dir()

    def get(self, name: str, key: str) -> str | None:
        if not (_safe(name) and _safe(key)):
            return None
        path = self.root / name / key
        try:
            text = path.read_text(encoding="utf-8")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        if text.endswith("\r\n"):
            return text[:-2]
        return text.removesuffix("\n")


def env_variable(name: str, key: str, prefix: str = ENV_PREFIX) -> str:
    """The environment variable holding a secret's key."""
    return prefix + _NOT_ALNUM.sub("_", f"{name}_{key}").upper()


class EnvSecretSource:
    """Secrets from environment variables (`ANALYSISD_SECRET_<NAME>_<KEY>`)."""

    def __init__(self, environ: Mapping[str, str] | None = None, prefix: str = ENV_PREFIX) -> None:
        # A snapshot, so a run sees one consistent set of values.
        self._environ = dict(os.environ if environ is None else environ)
        self._prefix = prefix

    def has_secret(self, name: str) -> bool:
        start = env_variable(name, "", self._prefix)
        return any(var.startswith(start) for var in self._environ)

    def get(self, name: str, key: str) -> str | None:
        return self._environ.get(env_variable(name, key, self._prefix))


class ChainSecretSource:
    """Several sources in order; the first that has the value answers."""

    def __init__(self, *sources: SecretSource) -> None:
        self.sources = sources

    def has_secret(self, name: str) -> bool:
        return any(has_secret(source, name) is not False for source in self.sources)

    def get(self, name: str, key: str) -> str | None:
        for source in self.sources:
            value = source.get(name, key)
            if value is not None:
                return value
        return None


def has_secret(source: SecretSource, name: str) -> bool | None:
    """Whether the source holds the named secret; None when the source cannot tell."""
    probe = getattr(source, "has_secret", None)
    return None if probe is None else bool(probe(name))


class NamespacedSecretSource:
    """Per-namespace secrets: `<root>/<namespace>/<secret>/<key>`, env secrets where granted."""

    def __init__(
        self,
        root: Path | str | None,
        env: SecretSource | None = None,
        env_granted: Callable[[str], bool] = lambda namespace: False,
    ) -> None:
        self.root = None if root is None else Path(root)
        self._env = env
        self._env_granted = env_granted
        self._views: dict[str, ChainSecretSource] = {}

    def for_namespace(self, namespace: str) -> ChainSecretSource:
        """What a run of `namespace` may read (nothing for a name that is not a folder name)."""
        found = self._views.get(namespace)
        if found is None:
            sources: list[SecretSource] = []
            if self.root is not None and _safe(namespace):
                sources.append(DirectorySecretSource(self.root / namespace))
            if self._env is not None and _safe(namespace) and self._env_granted(namespace):
                sources.append(self._env)
            found = self._views[namespace] = ChainSecretSource(*sources)
        return found

    def has_secret(self, name: str) -> bool:
        return False

    def get(self, name: str, key: str) -> str | None:
        return None


def scoped(source: SecretSource, namespace: str | None) -> SecretSource:
    """The part of `source` a run of `namespace` may read (a plain source: all of it)."""
    view = getattr(source, "for_namespace", None)
    if not callable(view):
        return source
    found: SecretSource = view(namespace or "")
    return found


# ---- the forms a secret can take in text ----


def secret_forms(value: str) -> set[str]:
    """The value as it appears raw, JSON-, URL- and Go-escaped (each a separate text to hide).

    JSON: Python's json.dumps with and without ensure_ascii; Go's json.Marshal,
    which also escapes < > & and U+2028/9 (providers.gocompat.json_string). URL:
    quote, quote_plus (Go's QueryEscape) and path quoting. Go's %q / strconv.Quote
    (providers.gocompat.go_quote): like JSON for printable text, \\x.. for control bytes.
    """
    if not value:
        return set()
    forms = {value}
    for ascii_only in (False, True):
        forms.add(json.dumps(value, ensure_ascii=ascii_only)[1:-1])
    forms.add(json_string(value)[1:-1])
    forms.add(urllib.parse.quote(value, safe=""))
    forms.add(urllib.parse.quote(value))
    forms.add(urllib.parse.quote_plus(value))
    forms.add(go_quote(value)[1:-1])
    return {form for form in forms if form}


def all_forms(values: Iterable[str]) -> frozenset[str]:
    """Every form of every secret value (see secret_forms)."""
    out: set[str] = set()
    for value in values:
        out |= secret_forms(value)
    return frozenset(out)
