"""Store settings."""

from govpulse.settings import Setting

SETTINGS = [
    Setting(
        "store.url",
        "",
        "Store URL: sqlite:///path/to/govpulse.db (default: govpulse.db in data_dir) "
        "or http(s)://host:9200 for Elasticsearch/OpenSearch.",
    ),
    Setting(
        "store.sqlite_busy_timeout_ms",
        30000,
        "How long a SQLite writer waits for the lock before failing, in milliseconds.",
        type="int",
    ),
    Setting(
        "store.batch_size",
        2000,
        "Messages written per transaction / bulk request.",
        type="int",
    ),
]
