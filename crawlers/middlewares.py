"""Retries with exponential back-off (and Retry-After) for 429 / 5xx / timeouts.

Scrapy's RetryMiddleware re-queues at once; hammering a server that said
429 is what gets crawlers blocked, so this one waits first.
"""

from __future__ import annotations

import asyncio
import logging

from scrapy.downloadermiddlewares.retry import RetryMiddleware, get_retry_request
from scrapy.utils.response import response_status_message

log = logging.getLogger(__name__)


class BackoffRetryMiddleware(RetryMiddleware):
    """RetryMiddleware that delays a retried request: base * 2**n seconds, capped."""

    def __init__(self, settings) -> None:  # type: ignore[no-untyped-def]
        super().__init__(settings)
        gp = settings.get("GOVPULSE") or {}
        self.base = float(gp.get("crawl.retry_backoff_base", 1.0))
        self.cap = float(gp.get("crawl.retry_backoff_max", 60.0))

    def _delay(self, request, retry_after: str | None = None) -> float:  # type: ignore[no-untyped-def]
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), self.cap)
        n = int(request.meta.get("retry_times", 0))
        return min(self.base * (2**n), self.cap)

    def process_response(self, request, response, spider=None):  # type: ignore[no-untyped-def]
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        reason = response_status_message(response.status)
        retry = get_retry_request(
            request, spider=self.crawler.spider, reason=reason, max_retry_times=self.max_retry_times
        )
        if retry is None:
            return response
        ra = response.headers.get("Retry-After")
        retry.meta["backoff_delay"] = self._delay(request, ra.decode() if ra else None)
        return retry

    def process_exception(self, request, exception, spider=None):  # type: ignore[no-untyped-def]
        if isinstance(exception, self.exceptions_to_retry) and not request.meta.get(
            "dont_retry", False
        ):
            retry = get_retry_request(
                request,
                spider=self.crawler.spider,
                reason=exception,
                max_retry_times=self.max_retry_times,
            )
            if retry is not None:
                retry.meta["backoff_delay"] = self._delay(request)
            return retry
        return None

    async def process_request(self, request, spider=None):  # type: ignore[no-untyped-def]
        delay = request.meta.pop("backoff_delay", 0)
        if delay:
            log.debug("backing off %.1fs before retrying %s", delay, request.url)
            await asyncio.sleep(delay)
        return None
