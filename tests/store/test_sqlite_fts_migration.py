"""Migration 7: the full-text index moves from FTS5's unicode61 to its ascii tokenizer.

The stored tokens are cut and lower-cased in Python, so both tokenizers must
find the same messages; a store written before the migration keeps every
match after it.
"""

from __future__ import annotations

import sqlite3

from govpulse.schema import Message, make_id
from store.sqlite import SQLiteStore
from store.sqlite_schema import LATEST_VERSION

TEXTS = [
    ("社会保险缴费基数咨询", "我在A市工作，社会保险断缴了三个月怎么补缴？"),
    ("小区燃气泄漏", "3栋2单元楼道里有很浓的煤气味，请燃气公司马上来人！"),
    ("WiFi信号差", "图书馆的WiFi经常断，C++课程的网课看不了，100%影响学习"),
]
QUERIES = ["保险", "社会保险", "燃气", "煤气味", "wifi", "WIFI", "c++", "学习", "不存在的词"]


def _fill(path) -> list[int]:  # type: ignore[no-untyped-def]
    store = SQLiteStore(path)
    try:
        store.upsert_many(
            Message(id=make_id("mailbox", str(i)), source="mailbox", channel="市长信箱",
                    title=title, body=body)
            for i, (title, body) in enumerate(TEXTS)
        )  # fmt: skip
        return [store.search(q).total for q in QUERIES]
    finally:
        store.close()


def _tokenizer(path) -> str:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT sql FROM sqlite_master WHERE name = 'messages_fts'").fetchone()[
            0
        ]
    finally:
        conn.close()


def test_a_version_6_index_is_rebuilt_with_the_same_matches(tmp_path):
    path = tmp_path / "v6.db"
    totals = _fill(path)
    assert totals == [1, 1, 1, 1, 1, 1, 1, 1, 0]
    # Turn it back into what version 6 wrote: the same tokens under unicode61.
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(
        """
        CREATE VIRTUAL TABLE old_fts USING fts5(tokens, tokenize = 'unicode61');
        INSERT INTO old_fts(rowid, tokens) SELECT rowid, tokens FROM messages_fts;
        DROP TABLE messages_fts;
        ALTER TABLE old_fts RENAME TO messages_fts;
        DELETE FROM schema_version WHERE version >= 7;
        """
    )
    conn.close()
    assert "unicode61" in _tokenizer(path)
    store = SQLiteStore(path)
    try:
        assert store.schema_version() == LATEST_VERSION
        assert [store.search(q).total for q in QUERIES] == totals
        rows = store._read("SELECT COUNT(*) FROM messages_fts")[0][0]
        assert rows == store.count() == len(TEXTS)
    finally:
        store.close()
    assert "'ascii'" in _tokenizer(path)
