"""Web pages for people, served by the daemon under /ui/ (DESIGN §7.2).

Server-rendered HTML with inline SVG charts drawn here; one small script
(static/ui.js) for live updates, the countdown and the terminate button. The
pages use the API's tokens and namespace rules (see access.py).
"""

from __future__ import annotations

from analysisd.ui.access import ui_middleware as middleware
from analysisd.ui.pages import add_routes

__all__ = ["add_routes", "middleware"]
