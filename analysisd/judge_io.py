"""The files the judge works from: canary configs and series files.

analysisd/judge/ is pure (it parses text and judges data); reading the files is
done here, for `analysisd judge` and for judge metrics naming a config
(canaryConfigName, resolved in the canary config directory).
"""

from __future__ import annotations

from pathlib import Path

from analysisd.judge.config import CanaryConfig, decode_config_text, parse_canary_config
from analysisd.judge.errors import ConfigError, SeriesError
from analysisd.judge.series_files import parse_series_text


def load_config_file(path: str | Path, *, strict: bool = False) -> CanaryConfig:
    """A Kayenta canary config file (JSON or YAML); ConfigError names the file."""
    file = Path(path)
    text = _read(file, ConfigError, "cannot read canary config")
    try:
        return parse_canary_config(decode_config_text(text, str(file)), strict=strict)
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from exc


def load_series_file(path: str | Path) -> dict[str, list[float]]:
    """A series file (JSON {"metric": [values]} or CSV columns) -> metric -> values."""
    file = Path(path)
    return parse_series_text(_read(file, SeriesError, "cannot read"), str(file))


def find_named_config(config_dir: str | Path, name: str) -> Path:
    """<dir>/<name>.json|.yaml|.yml; the name may not leave the directory."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"canaryConfigName: {name!r} is not a plain config name")
    base = Path(config_dir)
    for suffix in (".json", ".yaml", ".yml"):
        candidate = base / f"{name}{suffix}"
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"canaryConfigName: no config named {name!r} in {base} (.json, .yaml or .yml)"
    )


def read_named_config(config_dir: str | Path, name: str) -> tuple[str, str]:
    """The config `name` in `config_dir`: (its path, for messages; its text)."""
    path = find_named_config(config_dir, name)
    return str(path), _read(path, ConfigError, "cannot read canary config")


def _read(file: Path, error: type[ConfigError] | type[SeriesError], what: str) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{file}: {what}: {exc.strerror}") from exc
