"""Leader-mailbox letters: the 人民网 留言板 JSON API and mayor-mailbox HTML sites (site files).

``govpulse crawl mailbox`` pages through every list (stopping at letters
already stored and settled) and fetches detail pages of new or open
letters; ``govpulse crawl mailbox --revisit`` only re-visits open letters
whose back-off time (extra.revisit_at) has come.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import scrapy

from crawlers.config import base_url
from crawlers.pages.base import ParseError
from crawlers.pages.liuyan import LiuyanDetailPage, LiuyanListPage
from crawlers.pages.mailbox_html import MailboxDetailPage, MailboxListPage
from crawlers.sites import SiteDefinition, load_site
from crawlers.spiders.base import GovSpider

LIST_PATH = "/v1/threads/list/df"
DETAIL_PATH = "/v1/threads/content"
ROWS = 10


class MailboxSpider(GovSpider):
    name = "mailbox"
    source = "mailbox"

    def __init__(self, *args: Any, sites: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.site_names = sites.split(",") if sites else None

    # -- shared ----------------------------------------------------------------
    def sites(self) -> list[tuple[SiteDefinition, str]]:
        overrides = self.gp.get("crawl.site_base_urls") or {}
        out = []
        for name in self.site_names or self.gp["crawl.mailbox_sites"]:
            site = load_site(name)
            url = overrides.get(site.name) or site.base_url or str(self.gp["crawl.base_url"])
            out.append((site, url.rstrip("/")))
        return out

    def liuyan_base(self) -> str:
        return base_url(self.gp, "crawl.liuyan_base_url")

    def liuyan_request(
        self, path: str, payload: dict[str, Any], callback: Any, **kw: Any
    ) -> scrapy.Request:
        param = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        key = str(self.gp.get("crawl.liuyan_sign_key") or "")
        signature = hashlib.md5(f"{path}{param}{key}".encode()).hexdigest()
        body = {
            "appCode": self.gp.get("crawl.liuyan_app_code"),
            "token": "",
            "signature": signature,
            "param": param,
        }
        if path == DETAIL_PATH:
            body.update(payload)
        return scrapy.Request(
            self.liuyan_base() + path,
            method="POST",
            body=json.dumps(body, ensure_ascii=False),
            headers={"Content-Type": "application/json;charset=UTF-8"},
            callback=callback,
            **kw,
        )

    async def start(self):  # type: ignore[no-untyped-def]
        for req in self.start_requests_list():
            yield req

    def start_requests_list(self) -> list[scrapy.Request]:
        reqs: list[scrapy.Request] = []
        forums = [] if self.site_names else list(self.gp["crawl.liuyan_forums"])
        if self.revisit:
            for fid in forums:
                for m in self.due_letters("leader_fid", str(fid)):
                    tid = m.extra.get("tid")
                    reqs.append(
                        self.liuyan_request(
                            DETAIL_PATH,
                            {"tid": tid},
                            self.parse_liuyan_detail,
                            cb_kwargs={
                                "stub": {
                                    "source": "mailbox",
                                    "source_id": f"liuyan:{tid}",
                                    "channel": m.channel,
                                }
                            },
                            dont_filter=True,
                        )
                    )
            for site, _url in self.sites():
                for m in self.due_letters("site", site.name):
                    reqs.append(
                        scrapy.Request(
                            m.url or "",
                            callback=self.parse_site_detail,
                            cb_kwargs={
                                "site": site,
                                "stub": {"source_id": m.extra.get("source_id")},
                            },
                            dont_filter=True,
                        )
                    )
            return reqs
        for fid in forums:
            reqs.append(self.liuyan_list(str(fid), None, 1))
        for site, url in self.sites():
            reqs.append(
                scrapy.Request(
                    site.page_url(url, site.first_page),
                    callback=self.parse_site_list,
                    cb_kwargs={"site": site, "base": url, "number": site.first_page},
                    meta={"list_page": True},
                    dont_filter=True,  # list pages are re-read every run (incremental), even after a resumed job
                )
            )
        return reqs

    # -- 留言板 -------------------------------------------------------------------
    def liuyan_list(self, fid: str, last: str | None, number: int) -> scrapy.Request:
        payload = {
            "fid": fid,
            "showUnAnswer": 1,
            "typeId": 5,
            "lastItem": last or "",
            "position": "0",
            "rows": ROWS,
            "orderType": 2,
        }
        return self.liuyan_request(
            LIST_PATH,
            payload,
            self.parse_liuyan_list,
            cb_kwargs={"fid": fid, "number": number},
            meta={"list_page": True},
            dont_filter=True,  # list pages are re-read every run (incremental), even after a resumed job
        )

    def parse_liuyan_list(self, response: Any, fid: str, number: int):  # type: ignore[no-untyped-def]
        try:
            page = LiuyanListPage(self.page(response), self.now()).parse()
        except ParseError as exc:
            yield from self.failed(response, exc)
            return
        now = self.now()
        stored = self.stored([x["source_id"] for x in page.letters])
        fresh = 0
        for item in page.letters:
            item["extra"]["leader_fid"] = fid
            if not self.resumed and self.settled(stored.get(item["source_id"]), now):
                continue
            fresh += 1
            yield self.liuyan_request(
                DETAIL_PATH,
                {"tid": item["extra"]["tid"]},
                self.parse_liuyan_detail,
                cb_kwargs={"stub": item},
                # The store, not a local job's seen-set, decides what to fetch: an item fetched
                # just before a SIGKILL may not have reached the store, so it is fetched again.
                dont_filter=self.refetch_unstored or item["source_id"] in stored,
            )
        if self.incremental_stop(len(page.letters), fresh, len(stored)):
            return
        if (
            len(page.letters) >= ROWS
            and page.last_item
            and number < int(self.gp["crawl.max_list_pages"])
        ):
            yield self.liuyan_list(fid, page.last_item, number + 1)

    def parse_liuyan_detail(self, response: Any, stub: dict[str, Any]):  # type: ignore[no-untyped-def]
        tid = stub["source_id"].split(":", 1)[1]
        try:
            detail = LiuyanDetailPage(self.page(response), self.now()).parse(tid)
        except ParseError as exc:
            yield from self.failed(response, exc)
            return
        item = dict(stub)
        extra = {**stub.get("extra", {}), **detail.pop("extra")}
        for key in [k for k in detail if k.startswith("_")]:
            value = detail.pop(key)
            if key == "_subject" and not item.get("title"):
                item["title"] = value
        item.update({k: v for k, v in detail.items() if v not in (None, "")})
        item["extra"] = extra
        yield item

    # -- HTML mailbox sites ------------------------------------------------------------
    def parse_site_list(self, response: Any, site: SiteDefinition, base: str, number: int):  # type: ignore[no-untyped-def]
        try:
            page = MailboxListPage(self.page(response), site, self.now()).parse(number, base)
        except ParseError as exc:
            yield from self.failed(response, exc)
            return
        if not page.letters and number == site.first_page:
            self.health(
                "layout_changed",
                f"{response.url}: no rows match {site.rows!r} ({site.source_file})",
            )
        now = self.now()
        stored = self.stored([x["source_id"] for x in page.letters])
        fresh = 0
        for stub in page.letters:
            if not self.resumed and self.settled(stored.get(stub["source_id"]), now):
                continue
            fresh += 1
            yield scrapy.Request(
                stub["url"],
                callback=self.parse_site_detail,
                cb_kwargs={"site": site, "stub": stub},
                # The store, not a local job's seen-set, decides what to fetch: an item fetched
                # just before a SIGKILL may not have reached the store, so it is fetched again.
                dont_filter=self.refetch_unstored or stub["source_id"] in stored,
            )
        if self.incremental_stop(len(page.letters), fresh, len(stored)):
            return
        if page.next_url and number - site.first_page + 1 < int(self.gp["crawl.max_list_pages"]):
            yield scrapy.Request(
                page.next_url,
                callback=self.parse_site_list,
                cb_kwargs={"site": site, "base": base, "number": number + 1},
                meta={"list_page": True},
                dont_filter=True,  # list pages are re-read every run (incremental), even after a resumed job
            )

    def parse_site_detail(self, response: Any, site: SiteDefinition, stub: dict[str, Any]):  # type: ignore[no-untyped-def]
        sid = stub.get("source_id") or site.source_id(response.url)
        try:
            item = MailboxDetailPage(self.page(response), site, self.now()).parse(sid)
        except ParseError as exc:
            yield from self.failed(response, exc)
            return
        if not item.get("posted_at") and stub.get("posted_at"):
            item["posted_at"] = stub["posted_at"]
        if not item.get("title") and stub.get("title"):
            item["title"] = stub["title"]
        item["extra"] = {**stub.get("extra", {}), **{k: v for k, v in item["extra"].items() if v}}
        yield item
