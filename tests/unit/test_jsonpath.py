"""Kubernetes JSONPath: a case table checked against our expectations and, when present,
against Debian's kubectl (client-go) as an offline oracle."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from providers.jsonpath import JSONPath, JSONPathError, compile_jsonpath, go_json

DOC: dict[str, Any] = {
    "apiVersion": "example.com/v1",
    "kind": "Thing",
    "metadata": {"name": "demo", "labels": {"app.kubernetes.io/name": "web"}},
    "status": {
        "ok": True,
        "rate": 0.25,
        "count": 3,
        "name": "canary",
        "missing": None,
        "ratio": 1.5e-7,
        "big": 1e21,
        "html": "a<b&c",
    },
    "list": [
        {"name": "a", "v": 1, "tags": ["x", "y"]},
        {"name": "b", "v": 2, "tags": []},
        {"name": "c", "v": 3},
    ],
    "nums": [1, 2, 3, 4, 5, 6],
}

# (template, expected text) — kubectl's output for DOC (integral numbers are int64 there).
RENDERED = [
    ("{.status.ok}", "true"),
    ("{$.status.rate}", "0.25"),
    ("{.status.name}", "canary"),
    ("rate={.status.rate} count={.status.count}", "rate=0.25 count=3"),
    ("{.nums[0]}", "1"),
    ("{.nums[-1]}", "6"),
    ("{.nums[1:3]}", "2 3"),
    ("{.nums[::2]}", "1 3 5"),
    ("{.nums[*]}", "1 2 3 4 5 6"),
    ("{.nums[0,2]}", "1 3"),
    ("{.nums[2:2]}", ""),
    ("{.list[*].name}", "a b c"),
    ("{.list[?(@.name=='b')].v}", "2"),
    ("{.list[?(@.v>1)].name}", "b c"),
    ("{.list[?(@.v<=2)].name}", "a b"),
    ("{.list[?(@.v!=2)].name}", "a c"),
    ("{.list[?(@.tags)].name}", "a b"),
    ("{.list..name}", "a b c"),
    ("{.metadata.labels.app\\.kubernetes\\.io/name}", "web"),
    ("{range .list[*]}{.name}={.v};{end}", "a=1;b=2;c=3;"),
    (
        "{.status}",
        '{"big":1e+21,"count":3,"html":"a\\u003cb\\u0026c","missing":null,"name":"canary",'
        '"ok":true,"rate":0.25,"ratio":1.5e-7}',
    ),
    ("{.status.missing}", "null"),
    ("{.status.html}", "a<b&c"),
    ("{.list[0].tags}", '["x","y"]'),
    ("{.list[0]['name']}", "a"),
    ('{.metadata.name}{"\\n"}', "demo\n"),
    ("plain text only", "plain text only"),
]

# (template, client-go's error message)
ERRORS = [
    ("{.nope}", "nope is not found"),
    ("{.list[*].v.x}", "x is not found"),
    ("{.metadata.labels['app.kubernetes.io/name']}", "app is not found"),  # client-go quirk
    ("{.nums[10]}", "array index out of bounds: index 10, length 6"),
    ("{.nums[3:1]}", "starting index 3 is greater than ending index 1"),
    ("{.nums[0:3:0]}", "step must be > 0"),
    ("{.status.name[0]}", "string is not array or slice"),
    ("{.list[?(@.v==1.5)]}", "incompatible types for comparison"),
    ("{.list[?(@.name>1)]}", "incompatible types for comparison"),
    ("{.list[?(@.nope==1)]}", "nope is not found"),
    ("{.}", " is not found"),
    ("{end}", "not in range, nothing to end"),
]

PARSE_ERRORS = [
    ("{.a", "unclosed action"),
    ("{.nums[1}", "unterminated array"),
    ("{.nums[x]}", "invalid array index x"),
    ("{.list[?(@.v==1}", "unterminated filter"),
    ("{..a..b}", None),  # valid: two recursive descents are separated by a field
    ("{....a}", "invalid multiple recursive descent"),
    ("{#}", "unrecognized character in action"),
]


@pytest.mark.parametrize(("template", "expected"), RENDERED, ids=[t for t, _ in RENDERED])
def test_render_matches_kubectl(template: str, expected: str) -> None:
    assert JSONPath(template).render(DOC) == expected


@pytest.mark.parametrize(("template", "message"), ERRORS, ids=[t for t, _ in ERRORS])
def test_errors_match_client_go(template: str, message: str) -> None:
    with pytest.raises(JSONPathError) as caught:
        JSONPath(template).render(DOC)
    assert str(caught.value) == message


@pytest.mark.parametrize(("template", "message"), PARSE_ERRORS, ids=[t for t, _ in PARSE_ERRORS])
def test_parse_errors(template: str, message: str | None) -> None:
    if message is None:
        compile_jsonpath(template)
        return
    with pytest.raises(JSONPathError) as caught:
        compile_jsonpath(template)
    assert str(caught.value).startswith(message)


# -- Argo: every JSON number is a float64 ---------------------------------------------

ARGO_DOC = json.loads(json.dumps(DOC), parse_int=float)


def test_argo_numbers_need_float_literals_in_filters() -> None:
    with pytest.raises(JSONPathError, match="incompatible types for comparison"):
        JSONPath("{.list[?(@.v==1)].name}").first(ARGO_DOC)
    assert JSONPath("{.list[?(@.v==1.0)].name}").first(ARGO_DOC) == (True, "a")


def test_first_returns_the_decoded_value() -> None:
    assert JSONPath("{$.status.count}").first(ARGO_DOC) == (True, 3.0)
    assert JSONPath("{.list[0].tags}").first(ARGO_DOC) == (True, ["x", "y"])
    assert JSONPath("{.nums[2:2]}").first(ARGO_DOC) == (False, None)
    assert JSONPath("value: {.status.count}").first(ARGO_DOC) == (True, "value: ")


def test_argo_float_printing_follows_go_fmt() -> None:
    doc = {"a": 1e6, "b": 123456.0, "c": 0.0001, "d": 0.00001}
    assert JSONPath("{.a} {.b} {.c} {.d}").render(doc) == "1e+06 123456 0.0001 1e-05"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3.0, "3"),
        (0.1, "0.1"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1.5e-7, "1.5e-7"),
        (-2.5, "-2.5"),
        ("a<b>&", '"a\\u003cb\\u003e\\u0026"'),
        ("line\nbreak\u2028", '"line\\nbreak\\u2028"'),
        ({"b": 1.0, "a": [True, None]}, '{"a":[true,null],"b":1}'),
    ],
)
def test_go_json_matches_encoding_json(value: Any, text: str) -> None:
    assert go_json(value) == text


# -- the oracle ---------------------------------------------------------------------------

KUBECTL = shutil.which("kubectl")


def _kubectl(path: Path, template: str) -> tuple[int, str, str]:
    # `patch --local` prints the file's object through client-go's JSONPath with no
    # cluster; missing keys must be errors, as in Argo.
    completed = subprocess.run(
        [
            str(KUBECTL),
            "patch",
            "--local",
            "-f",
            str(path),
            "-p",
            "{}",
            "--type=merge",
            "--allow-missing-template-keys=false",
            "-o",
            f"jsonpath={template}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "KUBECONFIG": os.devnull},
        check=False,
    )
    return completed.returncode, completed.stdout, completed.stderr


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (Debian kubernetes-client) not installed")
def test_case_table_agrees_with_kubectl(tmp_path: Path) -> None:
    path = tmp_path / "thing.json"
    path.write_text(json.dumps(DOC))
    disagreements: list[tuple[str, str | None, int, str, str]] = []
    for template, expected in RENDERED:
        code, out, err = _kubectl(path, template)
        if code != 0 or out != expected:
            disagreements.append((template, expected, code, out, err[:200]))
    for template, message in ERRORS + [p for p in PARSE_ERRORS if p[1] is not None]:
        code, out, err = _kubectl(path, template)
        if code == 0 or str(message) not in err:
            disagreements.append((template, message, code, out, err[:200]))
    assert disagreements == []
