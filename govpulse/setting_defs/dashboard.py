"""Dashboard settings: server address, sessions, cookies and page sizes."""

from govpulse.settings import Setting

SETTINGS = [
    Setting("dashboard.host", "127.0.0.1", "Address `govpulse serve` listens on."),
    Setting("dashboard.port", 8050, "Port `govpulse serve` listens on.", type="int"),
    Setting(
        "dashboard.workers",
        1,
        "Worker processes for `govpulse serve` (each opens its own store).",
        type="int",
    ),
    Setting(
        "dashboard.secret_key",
        "",
        "Key that signs session cookies; empty: a random key kept in "
        "<data_dir>/dashboard_secret (shared by all workers).",
        secret=True,
    ),
    Setting(
        "dashboard.users_db",
        "",
        "SQLite file holding dashboard users and roles (default <data_dir>/users.db).",
    ),
    Setting(
        "dashboard.session_hours",
        8.0,
        "Sessions expire this many hours after login (the user must log in again).",
        type="float",
    ),
    Setting(
        "dashboard.https",
        False,
        "Set when the dashboard is served over https (behind a proxy): cookies get "
        "the Secure flag.",
        type="bool",
    ),
    Setting(
        "dashboard.page_size",
        20,
        "Rows per page in dashboard tables and search results.",
        type="int",
    ),
    Setting(
        "dashboard.rumour_threshold",
        0.5,
        "Rumour score from which a message is listed on the 谣言 page and counted as flagged.",
        type="float",
    ),
    Setting(
        "dashboard.export_max_rows",
        100000,
        "Most rows one CSV/Excel export writes (Excel is held in memory).",
        type="int",
    ),
    Setting(
        "dashboard.cache_seconds",
        300,
        "How long a computed view (page queries, rising terms, filter options) is "
        "reused while the store is unchanged; clock-dependent views are recomputed "
        "each such step; 0 disables caching.",
        type="int",
    ),
    Setting(
        "dashboard.cache_stale_seconds",
        600,
        "A cached view whose store or clock step has moved on is still shown, while "
        "it is recomputed in the background, if it is younger than this and took "
        "at least 0.1 s to compute (cheap views are simply recomputed); 0: never.",
        type="int",
    ),
    Setting(
        "dashboard.cache_db",
        "",
        "SQLite file of cached views and per-day rising-term counts, shared by all "
        "workers (default <data_dir>/dashboard_cache.db).",
    ),
    Setting(
        "dashboard.warm_seconds",
        30,
        "How often each worker checks whether the default views need recomputing "
        "(at start, after store writes, each cache step); 0 disables warming.",
        type="int",
    ),
    Setting(
        "dashboard.login_max_failures",
        5,
        "Failed logins for one user name before that name is locked for 15 minutes.",
        type="int",
    ),
]
