"""Dashboard pages, one module each.

Every page module defines NAME (id prefix), PATH, TITLE, IN_NAV,
``layout(ctx, view)`` (called per request with the URL's ViewState) and
``register(app, ctx)`` (adds its callbacks).  Component ids start with
NAME so pages never collide.
"""

from __future__ import annotations

from types import ModuleType

from dashboard.pages import alerts, detail, hot, overview, rumours, search, timeliness

PAGES: tuple[ModuleType, ...] = (overview, timeliness, hot, rumours, search, detail, alerts)


def page_for_path(path: str) -> ModuleType | None:
    """The page serving `path` (trailing slash ignored), or None."""
    path = "/" + path.strip("/")
    for page in PAGES:
        if path == page.PATH:
            return page
    return None
