"""Where secretKeyRef argument values come from (Kubernetes Secrets stand-ins).

- DirectorySecretSource: `<dir>/<secret>/<key>` files, the layout of a Secret
  mounted as a volume (one directory per secret, one file per key).
- EnvSecretSource: `ANALYSISD_SECRET_<NAME>_<KEY>`, upper-cased, every character
  that is not a letter or digit replaced by `_`.
- ChainSecretSource: the first source that knows the secret wins.

`get` returns None when the secret or key is absent; `has_secret` (optional on a
source) lets argument resolution tell "no such secret" from "no such key", which
Argo reports differently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

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
