"""govpulse settings (crawl.*) -> Scrapy settings, in one place.

Both `scrapy crawl NAME` (through crawlers/settings.py) and `govpulse crawl`
build Scrapy's settings here, so the two entry points crawl identically.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from govpulse.context import resolve_data_dir, resolve_store_url
from govpulse.settings import Settings

PIPELINES = {
    "crawlers.pipelines.normalise.NormalisePipeline": 100,
    "crawlers.pipelines.validate.ValidatePipeline": 200,
    "crawlers.pipelines.mask.MaskPipeline": 300,
    "crawlers.pipelines.dedupe.DedupePipeline": 400,
    "crawlers.pipelines.classify.ClassifyPipeline": 500,
    "crawlers.pipelines.store.StorePipeline": 600,
}


def base_url(gp: Settings | dict[str, Any], key: str) -> str:
    """A per-source base URL setting, falling back to crawl.base_url."""
    return str(gp[key] or gp["crawl.base_url"]).rstrip("/")


def scrapy_settings(gp: Settings, spider: str | None = None) -> dict[str, Any]:
    """Scrapy settings for a crawl driven by govpulse settings `gp`."""
    data_dir = resolve_data_dir(gp)
    out: dict[str, Any] = {
        "BOT_NAME": "govpulse",
        "SPIDER_MODULES": ["crawlers.spiders"],
        "NEWSPIDER_MODULE": "crawlers.spiders",
        "USER_AGENT": gp["crawl.user_agent"],
        "ROBOTSTXT_OBEY": gp["crawl.robotstxt_obey"],
        "DOWNLOAD_DELAY": gp["crawl.download_delay"],
        "AUTOTHROTTLE_ENABLED": gp["crawl.autothrottle"],
        "AUTOTHROTTLE_START_DELAY": max(gp["crawl.download_delay"], 0.01),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": gp["crawl.autothrottle_target_concurrency"],
        "CONCURRENT_REQUESTS": gp["crawl.concurrent_requests"],
        "CONCURRENT_REQUESTS_PER_DOMAIN": gp["crawl.concurrent_per_domain"],
        "RETRY_ENABLED": True,
        "RETRY_TIMES": gp["crawl.retry_times"],
        "RETRY_HTTP_CODES": [429, 500, 502, 503, 504, 522, 524, 408],
        "DOWNLOAD_TIMEOUT": gp["crawl.download_timeout"],
        "DOWNLOAD_MAXSIZE": gp["crawl.max_page_bytes"],
        "DOWNLOAD_WARNSIZE": min(8 * 1024 * 1024, gp["crawl.max_page_bytes"]),
        "COOKIES_ENABLED": True,
        "TELNETCONSOLE_ENABLED": False,
        "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawlers.middlewares.BackoffRetryMiddleware": 550,
        },
        "ITEM_PIPELINES": dict(PIPELINES),
        "EXTENSIONS": {"crawlers.health.CrawlHealth": 500},
        "CLOSESPIDER_PAGECOUNT": gp["crawl.close_after_pages"],
        "CLOSESPIDER_TIMEOUT": gp["crawl.close_after_seconds"],
        "LOG_LEVEL": str(gp["log_level"]).upper(),
        "GOVPULSE": dict(gp.items()),
        "GOVPULSE_STORE_URL": resolve_store_url(gp),
        "GOVPULSE_DATA_DIR": str(data_dir),
        "FEED_EXPORT_ENCODING": "utf-8",
    }
    jobdir = str(gp["crawl.jobdir"]).strip()
    if jobdir.lower() != "off" and spider:
        out["JOBDIR"] = str(Path(jobdir) / spider if jobdir else data_dir / "jobs" / spider)
    if gp["crawl.redis_url"]:
        # Keys are per run: a finished run's fingerprints must not hide the pages
        # of the next scheduled run (incremental crawls revisit list pages).
        run = str(gp["crawl.redis_run"] or datetime.now(UTC).strftime("%Y%m%d%H"))
        out.update(
            {
                "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
                "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
                "SCHEDULER_PERSIST": True,  # a worker that finishes first must not wipe its peers' queue
                "SCHEDULER_QUEUE_KEY": f"%(spider)s:{run}:requests",
                "SCHEDULER_DUPEFILTER_KEY": f"%(spider)s:{run}:dupefilter",
                "REDIS_URL": gp["crawl.redis_url"],
            }
        )
        out["EXTENSIONS"]["crawlers.redis_idle.SharedQueueIdle"] = 510
        out.pop("JOBDIR", None)  # the queue lives in Redis
    return out
