"""SQLite schema of the embedded store, as ordered migrations.

Each migration runs once, in a transaction, and is recorded in
``schema_version``; a database written by a newer govpulse (a version
above the last one here) is refused rather than silently misread.
Append new migrations; never edit an applied one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from store.sqlite_agg import TABLES, rebuild_from_rows

MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "messages, full-text index, crawl events, labels",
        """
        CREATE TABLE messages (
            rowid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            channel TEXT NOT NULL,
            url TEXT,
            title TEXT NOT NULL DEFAULT '',
            body TEXT NOT NULL DEFAULT '',
            author TEXT,
            region TEXT,
            department TEXT,
            posted_at INTEGER,
            reply_body TEXT,
            replied_at INTEGER,
            replier TEXT,
            status TEXT NOT NULL,
            likes INTEGER NOT NULL DEFAULT 0,
            reposts INTEGER NOT NULL DEFAULT 0,
            comments INTEGER NOT NULL DEFAULT 0,
            votes INTEGER NOT NULL DEFAULT 0,
            parent_id TEXT,
            topic TEXT,
            topic_score REAL,
            urgency TEXT,
            urgency_reasons TEXT,
            rumour_score REAL,
            rumour_reasons TEXT,
            duplicate_of TEXT,
            extra TEXT,
            fetched_at INTEGER,
            updated_at INTEGER,
            -- index-only values derived at write time (never read back into Message)
            posted_wd INTEGER,
            replied_wd INTEGER,
            content_hash TEXT NOT NULL,
            delay_s INTEGER GENERATED ALWAYS AS (replied_at - posted_at) VIRTUAL
        );
        CREATE INDEX ix_messages_posted ON messages(posted_at);
        CREATE INDEX ix_messages_source_posted ON messages(source, posted_at);
        CREATE INDEX ix_messages_department ON messages(department, status);
        CREATE INDEX ix_messages_status_posted ON messages(status, posted_at);
        CREATE INDEX ix_messages_topic ON messages(topic, posted_at);
        CREATE INDEX ix_messages_urgency ON messages(urgency, posted_at);
        CREATE INDEX ix_messages_rumour ON messages(rumour_score);
        CREATE INDEX ix_messages_parent ON messages(parent_id);
        CREATE INDEX ix_messages_region ON messages(region);
        CREATE INDEX ix_messages_channel ON messages(channel);
        CREATE VIRTUAL TABLE messages_fts USING fts5(tokens, tokenize = 'unicode61');

        CREATE TABLE crawl_events (
            rowid INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            spider TEXT NOT NULL,
            kind TEXT NOT NULL,
            at INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            items INTEGER NOT NULL DEFAULT 0,
            pages INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX ix_crawl_events_at ON crawl_events(source, at);

        CREATE TABLE labels (
            rowid INTEGER PRIMARY KEY,
            message_id TEXT NOT NULL,
            task TEXT NOT NULL,
            value TEXT NOT NULL,
            user TEXT NOT NULL,
            at INTEGER NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX ix_labels_task ON labels(task, at);
        CREATE INDEX ix_labels_message ON labels(message_id);
        """,
    ),
    (
        2,
        "covering index for date-bounded timeliness and facet queries",
        # The dashboard's default views are date-bounded; with this index the
        # aggregates read only index pages, never the (large) text rows.
        """
        CREATE INDEX ix_messages_cover ON messages(
            posted_at, source, status, department, topic, urgency, region,
            posted_wd, replied_wd, replied_at
        );
        """,
    ),
    (
        3,
        "rumour ranking per source",
        "CREATE INDEX ix_messages_source_rumour ON messages(source, rumour_score);",
    ),
    (
        4,
        "summary tables for all-time aggregates; partial indexes for delays and open letters",
        # Kept in the writing transaction by store/sqlite_agg.py; filled from
        # the existing rows by the Python step of this migration (POPULATE).
        """
        CREATE TABLE agg_month (
            k TEXT PRIMARY KEY, month INTEGER, source TEXT, department TEXT, topic TEXT,
            region TEXT, urgency TEXT, status TEXT, n INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE agg_day (
            k TEXT PRIMARY KEY, day INTEGER, source TEXT, topic TEXT, status TEXT,
            n INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE agg_delay_wd (
            k TEXT PRIMARY KEY, month INTEGER, source TEXT, department TEXT, status TEXT,
            d INTEGER, n INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE agg_delay_cd (
            k TEXT PRIMARY KEY, month INTEGER, source TEXT, department TEXT, status TEXT,
            d INTEGER, exact INTEGER NOT NULL, n INTEGER NOT NULL, sum_s INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX ix_messages_delay ON messages(delay_s, department, source, status, posted_at)
            WHERE status != 'open';
        CREATE INDEX ix_messages_open ON messages(posted_at, source, department, posted_wd)
            WHERE status = 'open';
        """,
    ),
    (
        5,
        "summary of open letters per posted day",
        """
        CREATE TABLE agg_open (
            k TEXT PRIMARY KEY, day INTEGER, wd INTEGER, source TEXT, department TEXT,
            n INTEGER NOT NULL
        ) WITHOUT ROWID;
        """,
    ),
    (
        6,
        "drop the open-letters index: agg_open serves what it did",
        # ix_messages_status_posted(status, posted_at) reads the rest (edges,
        # calendar ages); one index fewer to maintain on every import.
        "DROP INDEX IF EXISTS ix_messages_open;",
    ),
    (
        7,
        "full-text index with FTS5's ascii tokenizer",
        # The stored tokens are already cut, filtered and lower-cased in Python
        # (govpulse.tokenize.index_text), so the index only needs to split them
        # at spaces; 'ascii' does that a third cheaper than 'unicode61', with the
        # same terms on every letter and post in ../shared/data except single
        # accented Latin letters, which are no longer folded (é stays é).
        """
        CREATE VIRTUAL TABLE messages_fts_ascii USING fts5(tokens, tokenize = 'ascii');
        INSERT INTO messages_fts_ascii(rowid, tokens) SELECT rowid, tokens FROM messages_fts;
        DROP TABLE messages_fts;
        ALTER TABLE messages_fts_ascii RENAME TO messages_fts;
        """,
    ),
]

#: Python steps run right after a migration's SQL, in the same transaction.
POPULATE: dict[int, Callable[[sqlite3.Connection], None]] = {
    4: lambda conn: rebuild_from_rows(conn, tables=TABLES[:4]),
    5: lambda conn: rebuild_from_rows(conn, tables=("agg_open",)),
}

LATEST_VERSION = MIGRATIONS[-1][0]
