"""origin_of: the pool / rate-limit address of a Web metric's URL, cached by its prefix."""

from __future__ import annotations

import urllib.parse

from hypothesis import given, settings
from hypothesis import strategies as st

from providers.web import origin_of


def reference(url: str) -> str:
    """The whole URL through urlsplit, as origin_of worked before it was cached."""
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname or ''}:{parts.port or default}"


hosts = st.sampled_from(["127.0.0.1", "LocalHost", "[::1]", "svc.ns.svc", "user:pw@host"])
ports = st.none() | st.integers(min_value=1, max_value=65535)
tails = st.text(alphabet="/?#=&abc%19:@", max_size=24)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(["http", "https", "HTTP"]), hosts, ports, tails)
def test_origin_depends_on_the_authority_only_and_matches_urlsplit(
    scheme: str, host: str, port: int | None, tail: str
) -> None:
    authority = host if port is None else f"{host}:{port}"
    url = f"{scheme}://{authority}{tail}"
    if tail and tail[0] not in "/?#":
        url = f"{scheme}://{authority}/{tail}"
    assert origin_of(url) == reference(url)


def test_known_origins() -> None:
    assert origin_of("http://127.0.0.1/metric?service=a") == "http://127.0.0.1:80"
    assert origin_of("https://Example.COM/a/b#frag") == "https://example.com:443"
    assert origin_of("http://[::1]:9090?q=1") == "http://::1:9090"
    # Not parseable: the part up to the path stands for itself (one rate-limit key).
    assert origin_of("http://h:99999/x") == "http://h:99999"
