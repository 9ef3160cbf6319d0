"""Replica settings (replica id, lease duration) and provider limits reach the daemon."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysisd.config import ConfigError, load_settings
from analysisd.daemon import Daemon
from tests.e2e.rig import settings_for


def test_replica_id_comes_from_the_environment_and_lease_from_the_config_file(
    tmp_path: Path,
) -> None:
    config = tmp_path / "analysisd.yaml"
    config.write_text("leaseDuration: 2.5\nreplicaId: from-file\n")
    settings = load_settings({"config": str(config)}, environ={"ANALYSISD_REPLICA_ID": "pod-0"})
    assert settings.replica_id == "pod-0"  # environment beats the file
    assert settings.lease_duration == 2.5


def test_a_non_positive_lease_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "analysisd.yaml"
    config.write_text("leaseDuration: 0\n")
    with pytest.raises(ConfigError, match="leaseDuration: must be > 0"):
        load_settings({"config": str(config)}, environ={})


def test_malformed_provider_limits_stop_start_up_with_the_key_named(tmp_path: Path) -> None:
    config = tmp_path / "analysisd.yaml"
    config.write_text("providers:\n  limits:\n    concurrency: 0\n")
    with pytest.raises(ConfigError, match=r"providers\.limits: concurrency must be >= 1"):
        load_settings({"config": str(config)}, environ={})


async def test_daemon_passes_provider_limits_to_the_registry(tmp_path: Path) -> None:
    config = tmp_path / "analysisd.yaml"
    config.write_text(
        "providers:\n  limits:\n    rate: 7\n    perKind:\n      datadog: {rate: 2, burst: 3}\n"
    )
    file_settings = load_settings({"config": str(config)}, environ={})
    settings = settings_for(tmp_path, providers=file_settings.providers, replica_id="r-1")
    daemon = Daemon(settings)
    async with daemon:
        registry = daemon._source
        assert registry.limits.rate == 7
        assert registry.limits.for_kind("datadog")[:2] == (2, 3)
        assert daemon.instance == "r-1"
