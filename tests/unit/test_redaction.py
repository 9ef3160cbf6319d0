"""Every form a secret can take is hidden; metadata too; stored values are capped after that."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from analysisd.engine.dispatch import MAX_STORED_BYTES, capped, take_measurement
from analysisd.engine.measure import prepare_run
from analysisd.secrets import (
    DirectorySecretSource,
    EnvSecretSource,
    NamespacedSecretSource,
    all_forms,
    scoped,
    secret_forms,
)
from analysisd.spec import AnalysisRunSpec, ObjectMeta
from providers.base import Reading

SECRET = 'p4ss"&<é>word'
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def go_json(value: str) -> str:
    """Go's json.Marshal of a string (HTML-safe escapes), without the quotes."""
    text = json.dumps(value, ensure_ascii=False)[1:-1]
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def test_secret_forms_cover_json_go_and_url_escapes() -> None:
    forms = secret_forms(SECRET)
    for form in (
        SECRET,
        json.dumps(SECRET)[1:-1],  # \" and \u00e9
        json.dumps(SECRET, ensure_ascii=False)[1:-1],  # \" (also Go's %q)
        go_json(SECRET),
        urllib.parse.quote(SECRET, safe=""),
        urllib.parse.quote_plus(SECRET),
    ):
        assert form in forms


class Answer:
    def __init__(self, reading: Reading) -> None:
        self.reading = reading

    async def measure(self, kind: str, config: Mapping[str, Any]) -> Reading:
        return self.reading


def clock() -> datetime:
    return T0 + timedelta(seconds=1)


def run_with_secret(tmp_path: Path) -> Any:
    (tmp_path / "ns" / "db").mkdir(parents=True)
    (tmp_path / "ns" / "db" / "pw").write_text(SECRET)
    spec = AnalysisRunSpec.model_validate(
        {
            "args": [{"name": "pw", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}],
            "metrics": [{"name": "m", "provider": {"web": {"url": "http://x/{{args.pw}}"}}}],
        }
    )
    return prepare_run(spec, NamespacedSecretSource(tmp_path), ObjectMeta(name="r", namespace="ns"))


async def test_escaped_secrets_in_value_and_metadata_are_redacted(tmp_path: Path) -> None:
    prepared = run_with_secret(tmp_path)
    # An endpoint echoing it as Python and as Go write JSON.
    echo, go = json.dumps(SECRET)[1:-1], go_json(SECRET)
    body = '{"echo": "' + echo + '", "go": "' + go + '"}'
    reading = Reading(
        result=body,
        value=body + " " + urllib.parse.quote_plus(SECRET),
        metadata={"query": f"q?pw={urllib.parse.quote(SECRET, safe='')}", "go": go_json(SECRET)},
    )
    m = await take_measurement(
        Answer(reading), prepared, prepared.metrics[0], clock=clock, started=T0
    )
    stored = json.dumps(m.model_dump(mode="json", by_alias=True))
    for form in secret_forms(SECRET):
        assert form not in m.value
        assert all(form not in v for v in (m.metadata or {}).values())
    assert "*****" in m.value and "*****" in (m.metadata or {})["go"]
    assert "word" not in stored.replace("password", "")  # no tail of it left either


async def test_a_long_value_is_redacted_then_cut_to_the_cap_with_its_size(tmp_path: Path) -> None:
    prepared = run_with_secret(tmp_path)
    # A secret straddling the cut must not leave its head behind.
    text = "x" * (MAX_STORED_BYTES - 50) + SECRET + "y" * 100_000
    m = await take_measurement(
        Answer(Reading(result=text, value=text)),
        prepared,
        prepared.metrics[0],
        clock=clock,
        started=T0,
    )
    assert len(m.value.encode()) <= MAX_STORED_BYTES
    assert "p4ss" not in m.value
    full = len(text.replace(SECRET, "*****").encode())
    assert m.value.endswith(f"... [truncated: {full} bytes in full]")


def test_capped_cuts_on_a_character_boundary() -> None:
    text = "é" * 5000
    out = capped(text, 100)
    assert len(out.encode()) <= 100
    assert out.endswith("[truncated: 10000 bytes in full]")
    assert capped("short") == "short"


def test_a_namespace_sees_its_own_folder_and_env_secrets_only_where_granted(
    tmp_path: Path,
) -> None:
    for ns in ("shop", "payments"):
        (tmp_path / ns / "db").mkdir(parents=True)
        (tmp_path / ns / "db" / "pw").write_text(f"{ns}-pw")
    env = EnvSecretSource({"ANALYSISD_SECRET_SHARED_TOKEN": "env-token"})
    source = NamespacedSecretSource(tmp_path, env, lambda ns: ns == "payments")
    shop, payments = scoped(source, "shop"), scoped(source, "payments")
    assert shop.get("db", "pw") == "shop-pw"
    assert payments.get("db", "pw") == "payments-pw"
    assert shop.get("shared", "token") is None
    assert payments.get("shared", "token") == "env-token"
    # No namespace, or one that is not a folder name: nothing at all.
    for view in (scoped(source, None), scoped(source, ".."), scoped(source, "shop/../payments")):
        assert view.get("db", "pw") is None
    assert source.get("db", "pw") is None  # unscoped
    # A plain source (analysisd run's flat layout) is used as it is.
    flat = DirectorySecretSource(tmp_path / "shop")
    assert scoped(flat, "anything") is flat


def test_all_forms_of_several_secrets() -> None:
    assert {"a b", "a+b", "a%20b"} <= all_forms(["a b"])
