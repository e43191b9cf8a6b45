"""Full-text search and listing of the embedded store (a part of `SQLiteStore`).

Why a mixin: the store class is one object to its callers, but its search
paths (time-ordered index walks, best-scored relevance pages, capped
totals) are a topic of their own; see docs/configuration.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from govpulse.schema import Message
from store.base import (
    SORT_FIELDS,
    Filters,
    SearchResult,
    StoreError,
)
from store.common import to_epoch
from store.sqlite_agg import MONTH_DIMS
from store.sqlite_rows import (
    _COLUMNS,
    _row_to_message,
    _snapshot,
    fts_query,
)

#: Sort keys that are never NULL: no "NULLs last" term needed in either direction.
_NOT_NULL_SORT = {"likes", "reposts", "comments", "votes"}
#: Above this many full-text matches, a time-sorted page walks the time index.
_WALK_INDEX_ABOVE = 2000
#: Above this many best-scored candidates a relevance page joins every match instead.
_RELEVANCE_MAX = 50_000


def _no_filters(filters: Filters | None) -> bool:
    return filters is None or filters == Filters()


class SearchQueries:
    """Search methods of `SQLiteStore` (they use its connection helpers)."""

    @_snapshot
    def search(
        self,
        query: str = "",
        filters: Filters | None = None,
        sort: str = "-posted_at",
        page: int = 1,
        per_page: int = 20,
        exact_total: bool = False,
    ) -> SearchResult:
        page = max(1, int(page))
        per_page = max(1, min(int(per_page), 10_000))
        where, params = self._where(query, filters)
        hint = self._rumour_hint(query, filters)
        total, relation, matches = self._search_total(
            query, filters, where, params, exact_total, hint
        )
        order = self._order_by(sort, query)
        offset = (page - 1) * per_page
        if order is None:  # relevance
            rows = self._relevance_page(query, filters, per_page, offset)
        else:
            # Many full-text matches sorted by time: walking the time index and
            # probing the match set stops after one page; sorting every match
            # (what the planner picks without statistics on FTS) reads them all.
            if not hint and matches is not None and matches > _WALK_INDEX_ABOVE:
                key = sort.lstrip("-+")
                if key == "posted_at" or (key == "relevance" and not fts_query(query)):
                    hint = " INDEXED BY ix_messages_posted"
            sql = (
                f"SELECT {', '.join('m.' + c for c in _COLUMNS)} FROM messages m{hint}{where} "
                f"ORDER BY {order} LIMIT ? OFFSET ?"
            )
            rows = self._read(sql, [*params, per_page, offset])
        return SearchResult(total, [_row_to_message(r) for r in rows], page, per_page, relation)

    def _relevance_page(
        self, query: str, filters: Filters | None, per_page: int, offset: int
    ) -> list[tuple[Any, ...]]:
        """One page by bm25 then id, joining only the best-scored matches to their rows.

        Scoring every match is unavoidable (FTS5 has no top-k pruning), but
        joining every match to its row to break ties by id doubled the cost
        for common words.  The best `limit` scores are taken from the
        full-text index alone; the last score's tie group is dropped (it may
        continue past the limit), so what remains is exactly the head of the
        global order.  If too few of those pass the filters, the limit grows;
        past _RELEVANCE_MAX it is the one joined query, as before.
        """
        match = fts_query(query)
        need = offset + per_page
        cols = ", ".join("m." + c for c in _COLUMNS)
        where, params = self._where("", filters)  # candidates already match the query
        limit = max(4 * need, 200)
        while limit <= _RELEVANCE_MAX:
            cands = self._read(
                "SELECT rowid, bm25(messages_fts) AS s FROM messages_fts "
                "WHERE messages_fts MATCH ? ORDER BY s LIMIT ?",
                [match, limit],
            )
            complete = len(cands) < limit
            if not complete:
                cut = cands[-1][1]
                cands = [c for c in cands if c[1] < cut]
            score = dict(cands)
            found: list[tuple[float, str, tuple[Any, ...]]] = []
            joiner = " AND " if where else " WHERE "
            for start in range(0, len(cands), 500):
                chunk = [r for r, _ in cands[start : start + 500]]
                marks = ", ".join("?" * len(chunk))
                for row in self._read(
                    f"SELECT m.rowid, {cols} FROM messages m{where}{joiner}m.rowid IN ({marks})",
                    [*params, *chunk],
                ):
                    found.append((score[row[0]], row[1], row[1:]))
            if complete or len(found) >= need:
                found.sort(key=lambda f: (f[0], f[1]))
                return [f[2] for f in found[offset:need]]
            limit *= 8
        where, params = self._where(query, filters)
        return self._relevance_full(query, where, params, per_page, offset)

    def _relevance_full(
        self, query: str, where: str, params: list[Any], per_page: int, offset: int
    ) -> list[tuple[Any, ...]]:
        """The page by bm25 then id in one joined query (every match joined to its row)."""
        sql = (
            f"SELECT {', '.join('m.' + c for c in _COLUMNS)} FROM messages m "
            "JOIN (SELECT rowid AS r, bm25(messages_fts) AS score FROM messages_fts "
            "WHERE messages_fts MATCH ?) f ON f.r = m.rowid"
            f"{where} ORDER BY f.score, m.id LIMIT ? OFFSET ?"
        )
        return self._read(sql, [fts_query(query), *params, per_page, offset])

    def _search_total(
        self,
        query: str,
        filters: Filters | None,
        where: str,
        params: list[Any],
        exact: bool,
        hint: str = "",
    ) -> tuple[int, str, int | None]:
        """(total, "eq" or "gte", full-text match count or None) for a search page.

        Exact where it is cheap: a summary-table count, or a full-text count
        with no other filter (FTS counts its own index, ~10 ms for 200,000
        matches).  Otherwise matches are counted only up to
        ``search_total_cap`` and the total is reported as a lower bound
        ("gte", as Elasticsearch does), because an exact count of a common
        word under a filter reads every matching row.
        """
        matches = None
        match = fts_query(query) if query and query.strip() else None
        if query and query.strip() and match is None:
            return 0, "eq", 0  # nothing searchable in the query (punctuation only): no hits
        if match is not None:
            matches = self._read(
                "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH ?", [match]
            )[0][0]
            if _no_filters(filters):
                return matches, "eq", matches
        elif self._plan("", filters, MONTH_DIMS, "month") is not None:
            return self.count("", filters), "eq", None
        cap = self.search_total_cap
        if exact or cap <= 0 or (matches is not None and matches <= cap):
            n = self._read(f"SELECT COUNT(*) FROM messages m{where}", params)[0][0]
            return n, "eq", matches
        n = self._read(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM messages m{hint}{where} LIMIT ?)",
            [*params, cap + 1],
        )[0][0]
        if n > cap:
            return cap, "gte", matches
        return n, "eq", matches

    def _rumour_hint(self, query: str, filters: Filters | None) -> str:
        """Read a rumour-score range by its index when it is smaller than the date range.

        Without statistics on how scores and dates combine, SQLite takes the
        date index for "score >= t in the last 30 days" and looks up every
        message of the month (0.3 s at a million) although only a few
        thousand score that high.  Both ranges are counted on their own
        indexes, stopping at the smaller one, and the smaller one is read.
        """
        f = filters or Filters()
        if f.min_rumour is None or (f.since is None and f.until is None) or query.strip():
            return ""
        limit = 50_000
        rumour = self._read(
            "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE rumour_score >= ? LIMIT ?)",
            [f.min_rumour, limit],
        )[0][0]
        clauses, params = [], []
        if f.since is not None:
            clauses.append("posted_at >= ?")
            params.append(to_epoch(f.since))
        if f.until is not None:
            clauses.append("posted_at < ?")
            params.append(to_epoch(f.until))
        dated = self._read(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE {' AND '.join(clauses)} LIMIT ?)",
            [*params, limit],
        )[0][0]
        if rumour >= dated:
            return ""
        if f.source:
            return " INDEXED BY ix_messages_source_rumour"
        return " INDEXED BY ix_messages_rumour"

    @staticmethod
    def _order_by(sort: str, query: str) -> str | None:
        desc = sort.startswith("-")
        key = sort.lstrip("-+")
        if key not in SORT_FIELDS:
            raise StoreError(f"cannot sort by {key!r}; use one of {', '.join(SORT_FIELDS)}")
        if key == "relevance":
            if fts_query(query or ""):
                return None
            key, desc = "posted_at", True
        # NULLs last in both directions, then id for a stable order.  SQLite
        # already puts NULLs last when descending; saying so with "IS NULL"
        # would stop it from reading the column's index in order.
        if desc or key in _NOT_NULL_SORT:
            return f"m.{key} {'DESC' if desc else 'ASC'}, m.id ASC"
        return f"m.{key} IS NULL, m.{key} ASC, m.id ASC"

    def iter_messages(
        self, query: str = "", filters: Filters | None = None, batch_size: int = 1000
    ) -> Iterator[Message]:
        where, params = self._where(query, filters)
        last_id = ""
        joiner = " AND " if where else " WHERE "
        while True:
            rows = self._read(
                f"SELECT {', '.join('m.' + c for c in _COLUMNS)} FROM messages m{where}"
                f"{joiner}m.id > ? ORDER BY m.id LIMIT ?",
                [*params, last_id, batch_size],
            )
            if not rows:
                return
            for row in rows:
                yield _row_to_message(row)
            last_id = rows[-1][0]
