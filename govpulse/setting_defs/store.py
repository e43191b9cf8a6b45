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
        "store.search_total_cap",
        10000,
        "Search results count matches up to this many and then report 'at least' "
        "(exact counts of common words under filters read every match); 0: always exact.",
        type="int",
    ),
    Setting(
        "store.batch_size",
        2000,
        "Embedded store: messages prepared per step (validated, made into rows, handed to "
        "the index workers); a write transaction holds several steps (store.transaction_size). "
        "Elasticsearch: messages per bulk request.",
        type="int",
    ),
    Setting(
        "store.transaction_size",
        50000,
        "Embedded store: messages per write transaction of a bulk write.  The next one is "
        "read and prepared while this one commits, so up to twice this many are held in "
        "memory.  Larger is faster on a large store (100,000: +20 % adding to 1M messages); "
        "a failure rolls back more, and other writers wait longer for the lock.",
        type="int",
    ),
    # -- Elasticsearch / OpenSearch (docs/elasticsearch.md) ---------------
    Setting(
        "store.es_client",
        "auto",
        "Client library for http(s):// stores: auto (ask the cluster), elasticsearch or opensearch.",
    ),
    Setting(
        "store.es_prefix",
        "govpulse",
        "Index name prefix: <prefix>-messages (alias of <prefix>-messages-vN), "
        "<prefix>-crawl-events, <prefix>-labels.",
    ),
    Setting("store.es_username", "", "Cluster user name (or put user:password@ in the URL)."),
    Setting("store.es_password", "", "Cluster password.", secret=True),
    Setting(
        "store.es_api_key",
        "",
        "Cluster API key (base64 id:key); used instead of a password.",
        secret=True,
    ),
    Setting("store.es_verify_certs", True, "Verify the cluster's TLS certificate.", type="bool"),
    Setting("store.es_ca_certs", "", "CA bundle (PEM path) for a cluster with a private CA."),
    Setting("store.es_timeout", 30.0, "Seconds to wait for one cluster request.", type="float"),
    Setting("store.es_shards", 1, "Primary shards of a new message index.", type="int"),
    Setting(
        "store.es_replicas", 1, "Replicas of a new index (0 on a single-node cluster).", type="int"
    ),
    Setting(
        "store.es_refresh",
        True,
        "Refresh after each write call so the next read sees it; false for faster bulk loads.",
        type="bool",
    ),
    Setting(
        "store.es_retries", 3, "Retries of a busy/unreachable request before spooling.", type="int"
    ),
    Setting(
        "store.es_retry_backoff_s",
        0.5,
        "First back-off delay in seconds; doubles on each retry.",
        type="float",
    ),
    Setting(
        "store.es_spool_path",
        "",
        "Spool file for writes the cluster could not take (default: <data_dir>/spool/elastic-<hash>.sqlite).",
    ),
    Setting(
        "store.es_spool_retry_s",
        30.0,
        "While writes are spooled, how often (seconds) a new write first tries to replay them.",
        type="float",
    ),
    Setting(
        "store.index_workers",
        1,
        "Processes that cut text for the full-text index during large writes "
        "(bulk imports); 1 cuts inline.",
        type="int",
    ),
]
