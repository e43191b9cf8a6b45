"""The default views, computed ahead of the first user (see DashContext.start_warmer).

Why: with 1M messages the first load of a view costs what its store
queries cost (up to seconds); the views almost everyone opens -- each
page without filters -- are recomputed in the background at start, after
the store changes and when the clock moves to the next cache step, so the
morning's first visitor gets them from the shared cache.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from dashboard.cache import store_marker
from dashboard.context import DashContext

log = logging.getLogger(__name__)


def warm_defaults(ctx: DashContext) -> float:
    """Compute every page's default view through the shared cache; returns the seconds taken."""
    from dashboard.pages import hot, overview, rumours, search, timeliness
    from dashboard.urlstate import parse

    started = time.perf_counter()
    plain = parse("")
    today = ctx.now().date()
    # Cheap views first; the kept rising-term days last (on a new store they
    # cut weeks of messages once, ~5 s at 1M, which should not delay the rest).
    steps = (
        lambda: overview.layout(ctx, plain),
        lambda: overview.render(ctx, overview.default_view(ctx, plain)),
        lambda: timeliness.layout(ctx, plain),
        lambda: timeliness.render_charts(ctx, timeliness.default_view(ctx, plain)),
        lambda: rumours.render(ctx, plain, 0, None),
        lambda: search.layout(ctx, plain),
        lambda: search.render(ctx, plain),
        lambda: overview.render_terms(ctx, plain),
        lambda: hot.render(ctx, plain),
        # Kept days older than an hour are re-read here, in the background, so
        # edits that keep a day's count show (56 days: the 7 d window).
        lambda: ctx.terms().refresh(
            ctx.store(), today - timedelta(days=56), today, marker=store_marker(ctx.store())
        ),
        # The longer hot windows share the kept days; warming 7 d keeps 3 d warm too.
        lambda: hot.render(ctx, parse("?window=168")),
    )
    for step in steps:
        try:
            step()
        except Exception:  # one failing view must not keep the others cold
            log.exception("warming a default view failed")
    took = time.perf_counter() - started
    log.info("default views warmed in %.1f s", took)
    return took
