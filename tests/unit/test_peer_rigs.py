"""A missing real peer skips the test locally and fails it under CI (tests.rigs.peers)."""

from __future__ import annotations

import pytest

from tests.rigs.moto import require_moto_server
from tests.rigs.peers import in_ci
from tests.rigs.postgres import connect_admin
from tests.rigs.prometheus import require_binaries

# Port 1 on loopback: nothing listens there, so the connection is refused at once.
NO_POSTGRES = "postgresql://postgres@127.0.0.1:1/test"
NO_BINARY = "/nonexistent/analysisd-test-peer"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("yes", True), ("", False), ("false", False), ("0", False)],
)
def test_ci_is_any_value_but_an_explicit_no(value: str, expected: bool) -> None:
    assert in_ci({"CI": value}) is expected
    assert in_ci({}) is False


@pytest.mark.parametrize("ci", ["true", None])
def test_missing_prometheus_binaries_fail_under_ci_and_skip_locally(
    ci: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_ci(monkeypatch, ci)
    with pytest.raises(_outcome(ci), match="not installed"):
        require_binaries(NO_BINARY, NO_BINARY)


@pytest.mark.parametrize("ci", ["true", None])
def test_missing_moto_server_fails_under_ci_and_skips_locally(
    ci: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_ci(monkeypatch, ci)
    with pytest.raises(_outcome(ci), match="not installed"):
        require_moto_server(NO_BINARY)


@pytest.mark.parametrize("ci", ["true", None])
async def test_unreachable_postgres_fails_under_ci_and_skips_locally(
    ci: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_ci(monkeypatch, ci)
    with pytest.raises(_outcome(ci)):
        await connect_admin(NO_POSTGRES)


def _set_ci(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)


def _outcome(ci: str | None) -> type[BaseException]:
    # pytest.fail raises Failed, pytest.skip raises Skipped: neither is an Exception.
    return pytest.fail.Exception if ci else pytest.skip.Exception
