"""The page shell every /ui/ page shares: head, header, phase badges, small helpers (pure).

Phase is never shown by colour alone: every badge carries its word and a symbol.
CSS and the one script are files of this package (static/), served by the daemon
itself, so pages work offline and ship in the wheel.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from urllib.parse import quote

ASSET_VERSION = "2"  # bump when static/ changes: pages link assets with ?v= for caching

PHASE_SYMBOLS = {
    "Successful": "\u2714",  # heavy check mark
    "Failed": "\u2716",  # heavy multiplication x
    "Error": "\u26a0",  # warning sign
    "Inconclusive": "?",
    "Running": "\u25cf",  # black circle
    "Pending": "\u25cb",  # white circle
}
PHASES = ("Pending", "Running", "Successful", "Failed", "Error", "Inconclusive")


def e(value: object) -> str:
    """Escaped text for HTML bodies and attribute values."""
    return escape(str(value), quote=True)


def path_part(value: str) -> str:
    return quote(value, safe="")


def run_url(namespace: str, name: str) -> str:
    return f"/ui/namespaces/{path_part(namespace)}/analysisruns/{path_part(name)}"


def list_url(namespace: str) -> str:
    return f"/ui/namespaces/{path_part(namespace)}"


def badge(phase: str) -> str:
    """The phase as symbol + word; the class gives the colour, never the meaning alone."""
    symbol = PHASE_SYMBOLS.get(phase, "\u2022")
    cls = phase.lower() if phase in PHASE_SYMBOLS else "unknown"
    return (
        f'<span class="phase phase-{cls}" data-phase="{e(phase)}">'
        f'<span aria-hidden="true">{symbol}</span> {e(phase or "Pending")}</span>'
    )


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def age(then: datetime | None, now: datetime) -> str:
    """`42s`, `5m`, `3h`, `2d`: how long ago, kubectl-style."""
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def time_tag(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "-"
    stamp = then.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f'<time datetime="{stamp}" title="{stamp}">{age(then, now)}</time>'


def page(
    title: str,
    body: str,
    *,
    crumbs: list[tuple[str, str]] | None = None,
    attrs: str = "",
    script: bool = True,
) -> str:
    """A whole document: inline nothing but markup; CSS and JS come from /ui/static/."""
    trail = " / ".join(
        f'<a href="{e(href)}">{e(text)}</a>' if href else e(text) for text, href in crumbs or []
    )
    js = f'<script src="/ui/static/ui.js?v={ASSET_VERSION}" defer></script>' if script else ""
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{e(title)} \u2013 analysisd</title>"
        f'<link rel="stylesheet" href="/ui/static/ui.css?v={ASSET_VERSION}">{js}</head>'
        f"<body{attrs}>"
        '<a class="skip" href="#main">Skip to content</a>'
        f'<header><a class="brand" href="/ui/">analysisd</a>'
        f'<nav aria-label="breadcrumb">{trail}</nav></header>'
        f'<main id="main" tabindex="-1">{body}</main></body></html>'
    )
