"""Every relative link in docs/*.md and README.md points to an existing file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# [text](target) — target up to whitespace or ')' (an optional "title" is ignored).
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)")
FENCE = re.compile(r"```.*?```", re.S)


def relative_links(path: Path) -> list[str]:
    text = FENCE.sub("", path.read_text())  # links inside code blocks are examples
    out = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # http:, mailto:, in-page anchors
        out.append(target.split("#", 1)[0])
    return out


def test_docs_index_exists() -> None:
    assert (ROOT / "docs" / "README.md").is_file()


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    missing = [t for t in relative_links(doc) if not (doc.parent / t).exists()]
    assert missing == []


def test_docs_index_lists_every_doc() -> None:
    index = (ROOT / "docs" / "README.md").read_text()
    docs = [p.name for p in (ROOT / "docs").iterdir() if p.suffix in (".md", ".json")]
    unlisted = [name for name in docs if name != "README.md" and f"]({name})" not in index]
    assert unlisted == []
