"""The egress policy remembers what it allowed; a remembered answer is the answer it would give.

Each URL is checked twice by one policy (the second time from its memory) and once by a
fresh policy with the same rules: the outcomes and refusal messages must agree.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.egress import EgressPolicy, EgressRefused, ListenAddresses


def outcome(policy: EgressPolicy, url: str) -> str:
    try:
        policy.check_url(url)
    except EgressRefused as exc:
        return "refused: " + exc.message
    return "allowed"


PREFIX_SETS: list[list[str] | None] = [
    None,
    [],
    ["http://127.0.0.1:8080"],
    ["https://*.example.com", "http://api.example.com:8080/v1"],
    ["http://169.254.169.254/latest"],
]

URLS = [
    "http://127.0.0.1:8080/?service=a&metric=0",
    "http://127.0.0.1:8080/?service=b&metric=1",
    "http://127.0.0.1:8080",
    "http://127.0.0.1:9090/x",
    "http://[::ffff:127.0.0.1]:8080/",
    "http://[::1]:8080/",
    "http://169.254.169.254/latest/meta-data?x=1",
    "http://169.254.169.254/other",
    "http://[fe80::1]/",
    "https://a.example.com/x?token=s3cret",
    "https://example.com/x",
    "http://api.example.com:8080/v1/q?a=1",
    "http://api.example.com:8080/v2/q?a=1",
    "http://api.example.com:8080/v1",
    "http://api.example.com:8080/v10",
    "http://user:pw@a.example.com/",
    "https://a.example.com:99999/",
    "http://a.example.com\t/x",
    "HTTP://127.0.0.1:8080/",
    "ftp://127.0.0.1/",
    "http:///nohost",
    "http://[::1/",
]


@pytest.mark.parametrize("prefixes", PREFIX_SETS)
def test_remembered_answers_equal_fresh_answers(prefixes: list[str] | None) -> None:
    listen = [("127.0.0.1", 8080)]
    remembering = EgressPolicy.build("ns", prefixes, listen)
    for _ in range(2):
        for url in URLS:
            fresh = EgressPolicy.build("ns", prefixes, listen)
            assert outcome(remembering, url) == outcome(fresh, url), url


def test_daemon_address_added_after_a_url_was_allowed_is_refused() -> None:
    listen = ListenAddresses()
    policy = EgressPolicy.build("ns", None, listen)
    policy.check_url("http://127.0.0.1:8080/?a=1")  # allowed and remembered
    listen.update([("127.0.0.1", 8080)])  # the daemon binds there
    with pytest.raises(EgressRefused, match="daemon's own listen address"):
        policy.check_url("http://127.0.0.1:8080/?a=2")
    policy.check_url("http://127.0.0.1:8081/")  # another port is still fine


def test_replace_does_not_share_remembered_answers() -> None:
    open_policy = EgressPolicy.build("ns", None)
    open_policy.check_url("http://10.0.0.1:80/")
    narrowed = dataclasses.replace(open_policy, prefixes=())
    with pytest.raises(EgressRefused, match="not under any allowed prefix"):
        narrowed.check_url("http://10.0.0.1:80/")


def test_memory_is_bounded() -> None:
    policy = EgressPolicy.build("ns", None)
    for port in range(1, 5000):
        policy.check_url(f"http://10.0.0.1:{port}/")
    assert len(policy._allowed) <= 4096
    assert outcome(policy, "http://169.254.1.1:1/") != "allowed"


hosts = st.sampled_from(
    ["127.0.0.1", "[::1]", "169.254.1.2", "a.example.com", "example.com", "api.example.com"]
)
ports = st.sampled_from(["", ":80", ":8080", ":443"])
paths = st.sampled_from(["", "/", "/v1", "/v1/x", "/v10", "/latest"])
queries = st.sampled_from(["", "?a=1", "?token=x#f", "#frag"])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["http", "https"]), hosts, ports, paths, queries),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from(PREFIX_SETS),
)
def test_any_sequence_of_urls_gets_the_fresh_answer(
    parts: list[tuple[str, str, str, str, str]], prefixes: list[str] | None
) -> None:
    listen = [("127.0.0.1", 8080), ("::1", 443)]
    remembering = EgressPolicy.build("ns", prefixes, listen)
    for scheme, host, port, path, query in parts:
        url = f"{scheme}://{host}{port}{path}{query}"
        assert outcome(remembering, url) == outcome(EgressPolicy.build("ns", prefixes, listen), url)
