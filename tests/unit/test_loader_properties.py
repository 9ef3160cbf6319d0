"""Properties: any text loads or fails with LoadError; substitution fails only with ArgsError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from analysisd.args import ArgsError, redact, substitute
from analysisd.loader import LoadError, load_documents

TOKENS = [*":-[]{}&*!|>'\"#,.? \n\t0129", "a", "spec", "kind", "metrics", "- name: x"]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
DATES = st.sampled_from(["a: 2020-13-45\n", "a: 2001-02-30 10:00:00\n", "a: !!binary x\n"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(YAMLISH, st.text(max_size=60), DATES))
def test_any_text_loads_or_raises_load_error(text: str) -> None:
    try:
        load_documents(text)
    except LoadError as exc:
        assert str(exc).startswith("<input>")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("{} a.rgsx")), max_size=40))
def test_substitution_fails_only_with_args_error(template: str) -> None:
    try:
        result = substitute(template, {"args.x": "V"})
    except ArgsError:
        return
    # Every "{{" opens a tag that is either replaced or an error, so none survives.
    assert "{{" not in result


@given(st.text(max_size=30), st.sets(st.text(min_size=1, max_size=5), max_size=3))
def test_redacted_text_contains_no_secret(text: str, secrets: set[str]) -> None:
    # Only meaningful when no secret is a substring of the mask itself.
    secrets = {s for s in secrets if s not in "*****"}
    out = redact(text, secrets)
    assert all(s not in out.replace("*****", "\0") for s in secrets if "\0" not in s)
