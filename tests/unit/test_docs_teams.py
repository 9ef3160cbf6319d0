"""The settings file in docs/operations.md ("Running it for many teams") is one the daemon loads."""

from __future__ import annotations

import re
from pathlib import Path

from analysisd.config import Quota, load_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def teams_settings_block() -> str:
    section = DOC.read_text().split("## Running it for many teams", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_documented_teams_settings_file_loads(tmp_path: Path) -> None:
    config = tmp_path / "analysisd.yaml"
    config.write_text(teams_settings_block())
    settings = load_settings({"config": str(config)}, {})
    shop, payments = settings.namespace("shop"), settings.namespace("payments")
    assert shop.egress is not None and "http://prometheus.shop:9090" in shop.egress
    assert (shop.env_secrets, payments.env_secrets) == (False, True)
    assert payments.max_response_bytes == 1024 * 1024
    assert shop.quota == Quota(200, 20.0, 50, 10.0)
    assert settings.namespace("unlisted").egress == settings.egress
