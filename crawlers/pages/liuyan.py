"""人民网 地方领导留言板 JSON API: letter list and letter detail.

Two API generations exist (see docs/crawlers.md): the old
``/threads/queryThreadsList`` answering ``responseData[]`` and the v1
``/v1/threads/list/df`` answering ``resultData.data[]``; both are read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crawlers.pages.base import Page, ParseError, as_dict, as_list
from crawlers.text import html_to_text

#: 留言板 state -> Message status (办理中 = accepted but not answered yet).
STATES = {
    "待回复": "open",
    "办理中": "open",
    "已办理": "answered",
    "已回复": "answered",
    "已关闭": "closed",
}


def _answer_fields(page: Page, content: Any, dateline: Any, org: Any) -> dict[str, Any]:
    text = html_to_text(content) if isinstance(content, str) else ""
    if not text:
        return {}
    return {
        "reply_body": text,
        "replied_at": page.time(dateline),
        "replier": str(org).strip() or None if org else None,
        "status": "answered",
    }


@dataclass(slots=True)
class LetterList:
    """One list page: letters and the ``lastItem`` cursor of the next page."""

    letters: list[dict[str, Any]]
    last_item: str | None


class LiuyanListPage(Page):
    """A list page of letters to one leader (fid)."""

    def parse(self) -> LetterList:
        data = as_dict(self.json(), self.url)
        if "resultData" in data:
            code = data.get("resultCode")
            if code not in (None, 200, "200", 0, "0"):
                self.check_blocked(str(data.get("resultMsg") or ""))
                raise ParseError(f"{self.url}: API error {code}: {data.get('resultMsg')}")
            result = data.get("resultData")
            rows = as_list(as_dict(result, "resultData").get("data"), "resultData.data")
        else:
            rows = as_list(data.get("responseData"), f"{self.url} responseData")
        letters = [item for item in (self._letter(r) for r in rows) if item]
        last = (
            str(rows[-1].get("tid"))
            if rows and isinstance(rows[-1], dict) and rows[-1].get("tid")
            else None
        )
        return LetterList(letters, last)

    def _letter(self, row: Any) -> dict[str, Any] | None:
        if not isinstance(row, dict) or not str(row.get("tid") or "").strip():
            return None
        tid = str(row["tid"]).strip()
        state = str(row.get("stateInfo") or "").strip()
        item: dict[str, Any] = {
            "source": "mailbox",
            "source_id": f"liuyan:{tid}",
            "channel": str(row.get("forumName") or row.get("fid") or "领导留言板"),
            "url": f"https://liuyan.people.com.cn/threads/content?tid={tid}",
            "title": html_to_text(
                row.get("subject") if isinstance(row.get("subject"), str) else ""
            ),
            "body": html_to_text(row.get("content") if isinstance(row.get("content"), str) else ""),
            "author": row.get("nickName") or None,
            "posted_at": self.time(row.get("dateline")),
            "status": STATES.get(state, "open"),
            "region": row.get("areaName") or None,
            "extra": {
                "tid": tid,
                "state": state or None,
                "type": row.get("typeName") or None,
                "domain": row.get("domainName") or None,
                "leader": row.get("forumName") or None,
            },
        }
        item.update(
            _answer_fields(
                self,
                row.get("answerContent"),
                row.get("answerDateline"),
                row.get("answerOrganization"),
            )
        )
        return item


class LiuyanDetailPage(Page):
    """``/v1/threads/content``: the letter first, official replies after it."""

    def parse(self, tid: str) -> dict[str, Any]:
        data = as_dict(self.json(), self.url)
        result = as_dict(data.get("resultData"), f"{self.url} resultData")
        entries = [
            e for e in as_list(result.get("contentList"), "contentList") if isinstance(e, dict)
        ]
        if not entries:
            raise ParseError(f"{self.url}: letter {tid} has no content")
        letter = entries[0]
        state = str(letter.get("stateInfo") or result.get("stateInfo") or "").strip()
        item: dict[str, Any] = {
            "source": "mailbox",
            "source_id": f"liuyan:{tid}",
            "body": html_to_text(
                letter.get("content") if isinstance(letter.get("content"), str) else ""
            ),
            "posted_at": self.time(letter.get("dateline")),
            "status": STATES.get(state, "open"),
            "extra": {"tid": tid, "state": state or None},
        }
        for key in ("subject", "forumName", "typeName", "domainName", "nickName"):
            if isinstance(result.get(key), str):
                item["_" + key] = result[key]
        for entry in entries[1:]:
            fields = _answer_fields(
                self, entry.get("content"), entry.get("dateline"), entry.get("organization")
            )
            if fields:
                item.update(fields)  # the latest reply wins: it is the final answer
        return item
