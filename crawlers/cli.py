"""`govpulse crawl NAME` and `govpulse sandbox` commands."""

from __future__ import annotations

import logging
import shutil
import sys

import click

from govpulse.context import AppContext

SPIDERS = ("weibo", "mailbox", "forum")


@click.command("crawl")
@click.argument("name", type=click.Choice(SPIDERS))
@click.option(
    "--revisit", is_flag=True, help="Only re-visit open letters whose back-off time has come."
)
@click.option(
    "--sites", metavar="A,B", help="mailbox: only these site definitions (names or .toml paths)."
)
@click.option("--boards", metavar="FID,FID", help="forum: only these board ids.")
@click.option("--base-url", metavar="URL", help="Target this base URL (sets crawl.base_url).")
@click.option(
    "--max-pages",
    type=int,
    default=None,
    help="Stop after this many pages (crawl.close_after_pages).",
)
@click.pass_obj
def crawl_cmd(
    app: AppContext,
    name: str,
    revisit: bool,
    sites: str | None,
    boards: str | None,
    base_url: str | None,
    max_pages: int | None,
) -> None:
    """Run one spider through the full pipeline into the store.

    Runs in this process (Twisted cannot restart, so run one crawl per
    process; the scheduler starts this command as a subprocess).
    """
    from scrapy.crawler import CrawlerProcess

    from crawlers.config import scrapy_settings

    overrides: dict[str, object] = {}
    if base_url:
        overrides["crawl.base_url"] = base_url
    if max_pages is not None:
        overrides["crawl.close_after_pages"] = max_pages
    settings = app.settings.with_overrides(overrides) if overrides else app.settings
    scrapy_conf = scrapy_settings(settings, name)
    # govpulse's CLI already configured the root logger; Scrapy must not add a second handler.
    scrapy_conf["LOG_INSTALL_ROOT_HANDLER"] = False
    process = CrawlerProcess(scrapy_conf)
    logging.getLogger("scrapy").setLevel(logging.getLogger().getEffectiveLevel())
    kwargs: dict[str, object] = {"revisit": revisit}
    if sites and name == "mailbox":
        kwargs["sites"] = sites
    if boards and name == "forum":
        kwargs["boards"] = boards
    crawler = process.create_crawler(name)
    process.crawl(crawler, **kwargs)
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    events = stats.get("govpulse/health/events", [])
    click.echo(
        f"{name}: {stats.get('item_scraped_count', 0)} items, {stats.get('response_received_count', 0)} pages, "
        f"{stats.get('item_dropped_count', 0)} dropped, events: {', '.join(events) or 'none'}"
    )
    if stats.get("finish_reason") not in (
        "finished",
        "closespider_pagecount",
        "closespider_timeout",
    ):
        sys.exit(1)
    # JOBDIR exists to resume a killed run; after a clean finish its request
    # fingerprints would make the next (incremental) run skip every list page.
    if scrapy_conf.get("JOBDIR") and stats.get("finish_reason") == "finished":
        shutil.rmtree(scrapy_conf["JOBDIR"], ignore_errors=True)


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
@click.option("--seed", type=int, default=None, help="Content seed (crawl.sandbox_seed).")
@click.option(
    "--speed",
    type=float,
    default=None,
    help="Clock speed: simulated seconds per second (crawl.sandbox_speed).",
)
@click.option(
    "--faults", type=float, default=None, help="Share of pages failing once (crawl.sandbox_faults)."
)
@click.option("--days", type=int, default=60, show_default=True, help="Days of history before now.")
@click.pass_obj
def sandbox_cmd(
    app: AppContext,
    host: str,
    port: int,
    seed: int | None,
    speed: float | None,
    faults: float | None,
    days: int,
) -> None:
    """Serve the practice site: generated content in the real site shapes."""
    from crawlers.sandbox.generator import Clock, World
    from crawlers.sandbox.server import Sandbox, make_server

    s = app.settings
    sandbox = Sandbox(
        World(seed=s["crawl.sandbox_seed"] if seed is None else seed, history_days=days),
        Clock(speed=s["crawl.sandbox_speed"] if speed is None else speed),
        faults=s["crawl.sandbox_faults"] if faults is None else faults,
    )
    server = make_server(host, port, sandbox)
    click.echo(f"govpulse sandbox on http://{host}:{server.server_port}/ (Ctrl-C to stop)")
    logging.getLogger(__name__).info("sandbox started")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
