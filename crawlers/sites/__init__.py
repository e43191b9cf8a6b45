"""Mayor-mailbox site definitions: one TOML file per city site, no code per city.

A definition names the list URL and its pagination, selectors (CSS, or XPath
with an ``xpath:`` prefix) for each field of the list and detail pages, date
formats and the page encoding.  See docs/crawlers.md for every key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any


class SiteDefinitionError(ValueError):
    """A site definition file that is missing or incomplete."""


_DETAIL_FIELDS = (
    "title",
    "body",
    "posted_at",
    "reply_body",
    "replied_at",
    "replier",
    "author",
    "department",
    "category",
    "state",
)


@dataclass(frozen=True, slots=True)
class SiteDefinition:
    """A parsed site file."""

    name: str
    channel: str
    list_url: str
    rows: str
    link: str
    region: str | None = None
    base_url: str = ""
    encoding: str | None = None
    first_page: int = 1
    per_page: int | None = None
    total_regex: str | None = None
    next_page: str | None = None
    list_fields: dict[str, str] = field(default_factory=dict)
    id_regex: str = r"(\d+)"
    detail: dict[str, str] = field(default_factory=dict)
    date_formats: tuple[str, ...] = ()
    answered_states: tuple[str, ...] = ("已回复", "已办结", "已办理", "办结")
    source_file: str = ""

    def page_url(self, base_url: str, page: int) -> str:
        return base_url.rstrip("/") + self.list_url.format(page=page)

    def source_id(self, link: str) -> str | None:
        m = re.search(self.id_regex, link)
        return f"{self.name}:{m.group(1)}" if m else None


def _require(table: dict[str, Any], key: str, where: str) -> Any:
    if key not in table or table[key] in ("", None):
        raise SiteDefinitionError(f"{where}: missing required key {key!r}")
    return table[key]


def parse_definition(text: str, where: str) -> SiteDefinition:
    """Parse the TOML text of a site file; SiteDefinitionError names what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SiteDefinitionError(f"{where}: invalid TOML: {exc}") from None
    lst = data.get("list") or {}
    det = data.get("detail") or {}
    unknown = set(det) - set(_DETAIL_FIELDS)
    if unknown:
        raise SiteDefinitionError(f"{where}: unknown detail field(s) {sorted(unknown)}")
    for key in ("title", "body"):
        _require(det, key, f"{where} [detail]")
    list_fields = {
        k: v for k, v in lst.items() if k in ("title", "posted_at", "category", "state", "author")
    }
    url = str(_require(lst, "url", f"{where} [list]"))
    if "{page}" not in url:
        raise SiteDefinitionError(f"{where} [list] url needs a {{page}} placeholder")
    return SiteDefinition(
        name=str(_require(data, "name", where)),
        channel=str(_require(data, "channel", where)),
        region=data.get("region"),
        base_url=str(data.get("base_url", "")),
        encoding=data.get("encoding"),
        list_url=url,
        rows=str(_require(lst, "rows", f"{where} [list]")),
        link=str(_require(lst, "link", f"{where} [list]")),
        first_page=int(lst.get("first_page", 1)),
        per_page=int(lst["per_page"]) if lst.get("per_page") else None,
        total_regex=lst.get("total_regex"),
        next_page=lst.get("next_page"),
        list_fields=list_fields,
        id_regex=str(lst.get("id_regex", r"(\d+)")),
        detail={k: str(v) for k, v in det.items()},
        date_formats=tuple(data.get("date_formats", ())),
        answered_states=tuple(data.get("answered_states", ("已回复", "已办结", "已办理", "办结"))),
        source_file=where,
    )


def load_site(name_or_path: str) -> SiteDefinition:
    """Load a shipped definition by name (``chuzhou``) or any file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return parse_definition(path.read_text(encoding="utf-8"), str(path))
    resource = resources.files("crawlers.sites").joinpath(f"{name_or_path}.toml")
    if not resource.is_file():
        raise SiteDefinitionError(
            f"no site definition {name_or_path!r} (crawlers/sites/*.toml or a path)"
        )
    return parse_definition(
        resource.read_text(encoding="utf-8"), f"crawlers/sites/{name_or_path}.toml"
    )


def shipped_sites() -> list[str]:
    """Names of the definitions shipped in crawlers/sites/."""
    return sorted(
        p.name[:-5] for p in resources.files("crawlers.sites").iterdir() if p.name.endswith(".toml")
    )
