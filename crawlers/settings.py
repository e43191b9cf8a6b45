"""Scrapy settings module for `scrapy crawl NAME` (scrapy.cfg points here).

Values come from the govpulse settings registry (govpulse.toml, GOVPULSE_*
environment), translated in crawlers/config.py; `govpulse crawl` uses the
same translation.  JOBDIR is set per spider by `govpulse crawl`; with
plain `scrapy crawl` pass ``-s JOBDIR=...`` to resume.
"""

from crawlers.config import scrapy_settings
from govpulse.settings import load

globals().update(scrapy_settings(load()))
