"""Crawl settings: targets, politeness, incremental state, health thresholds, scale-out."""

from govpulse.settings import Setting

SETTINGS = [
    # -- targets -----------------------------------------------------------
    Setting(
        "crawl.base_url",
        "http://127.0.0.1:8765",
        "Base URL every spider targets unless a per-source URL is set "
        "(default: the practice site started by `govpulse sandbox`).",
    ),
    Setting(
        "crawl.weibo_base_url", "", "Base URL of the mobile Weibo API (real: https://m.weibo.cn)."
    ),
    Setting(
        "crawl.weibo_accounts",
        ["1000000001", "1000000002", "1000000003"],
        "Weibo account uids whose posts and comments are collected.",
        type="list",
    ),
    Setting(
        "crawl.weibo_cookie",
        "",
        "Cookie header sent to Weibo (login session); from the environment "
        "GOVPULSE_CRAWL_WEIBO_COOKIE, never from the repository.",
        secret=True,
    ),
    Setting(
        "crawl.weibo_max_comment_pages",
        50,
        "Comment pages fetched per post (the platform stops near 50); beyond it the "
        "crawl records an 'incomplete' event.",
        type="int",
    ),
    Setting(
        "crawl.weibo_max_timeline_pages", 20, "Timeline pages read per account and run.", type="int"
    ),
    Setting(
        "crawl.liuyan_base_url",
        "",
        "Base URL of the 人民网 领导留言板 JSON API (real: https://liuyan.people.com.cn/prod-api).",
    ),
    Setting(
        "crawl.liuyan_forums",
        ["101", "102", "103"],
        "留言板 forum ids (fid: the leader addressed) to collect.",
        type="list",
    ),
    Setting("crawl.liuyan_app_code", "PC42ce3bfa4980a9", "appCode sent to the 留言板 v1 API."),
    Setting(
        "crawl.liuyan_sign_key",
        "",
        "Client key the 留言板 v1 API signature is computed with (md5 over path + param + key).",
        secret=True,
    ),
    Setting(
        "crawl.mailbox_sites",
        ["chuzhou", "chengdu12345"],
        "Mayor-mailbox site definitions (crawlers/sites/<name>.toml or a path) the "
        "mailbox spider crawls besides the 留言板 API.",
        type="list",
    ),
    Setting(
        "crawl.site_base_urls",
        {},
        "Per-site base URL overrides, JSON object site name -> URL (targets a real city site).",
        type="json",
    ),
    Setting("crawl.forum_base_url", "", "Base URL of the Discuz! forum (问政 board site)."),
    Setting("crawl.forum_boards", ["41", "42"], "Discuz! board ids (fid) to collect.", type="list"),
    Setting(
        "crawl.forum_official_pattern",
        r"(局|办|委|政府|中心|管理处|官方|办公室|指挥部|热线)$",
        "Regular expression: forum authors whose name matches answer officially.",
    ),
    Setting(
        "crawl.max_list_pages",
        30,
        "Hard cap of list pages per board/mailbox and run (stops endless pagination).",
        type="int",
    ),
    # -- politeness ----------------------------------------------------------
    Setting(
        "crawl.user_agent",
        "govpulse/0.1 (+public-opinion monitoring; contact the press office running it)",
        "User-Agent header of every request.",
    ),
    Setting("crawl.robotstxt_obey", True, "Obey robots.txt.", type="bool"),
    Setting(
        "crawl.download_delay",
        0.5,
        "Seconds between requests to one site (AutoThrottle starts here).",
        type="float",
    ),
    Setting(
        "crawl.autothrottle",
        True,
        "Adapt the delay to the server's latency (AutoThrottle).",
        type="bool",
    ),
    Setting(
        "crawl.autothrottle_target_concurrency",
        2.0,
        "AutoThrottle's target parallel requests per site.",
        type="float",
    ),
    Setting("crawl.concurrent_requests", 16, "Requests in flight overall.", type="int"),
    Setting("crawl.concurrent_per_domain", 4, "Requests in flight per site.", type="int"),
    Setting(
        "crawl.retry_times",
        4,
        "Retries of a failed request (429, 5xx, timeouts, truncated bodies).",
        type="int",
    ),
    Setting(
        "crawl.retry_backoff_base",
        1.0,
        "First retry waits this many seconds, doubling each time (Retry-After wins).",
        type="float",
    ),
    Setting(
        "crawl.retry_backoff_max", 60.0, "Longest wait between retries, in seconds.", type="float"
    ),
    Setting("crawl.download_timeout", 30, "Seconds before a request is abandoned.", type="int"),
    Setting(
        "crawl.max_page_bytes",
        16 * 1024 * 1024,
        "Bodies larger than this are dropped (logged and counted).",
        type="int",
    ),
    Setting(
        "crawl.close_after_pages", 0, "Stop a run after this many pages (0: no limit).", type="int"
    ),
    Setting(
        "crawl.close_after_seconds",
        0,
        "Stop a run after this many seconds (0: no limit).",
        type="int",
    ),
    # -- state ---------------------------------------------------------------
    Setting(
        "crawl.jobdir",
        "",
        "Folder where a crawl keeps its queue so a killed run resumes "
        "(empty: <data_dir>/jobs/<spider>; 'off' disables).",
    ),
    Setting(
        "crawl.incremental",
        True,
        "Stop list paging at items already stored and unchanged.",
        type="bool",
    ),
    Setting(
        "crawl.revisit_hours",
        [1, 6, 24, 72, 168, 336],
        "Back-off schedule (hours) for re-visiting letters still open; after the last "
        "step the letter is given up (extra.revisit_at cleared).",
        type="list",
    ),
    Setting(
        "crawl.dedupe_threshold",
        0.8,
        "Jaccard similarity above which texts are near-duplicates.",
        type="float",
    ),
    Setting(
        "crawl.dedupe_min_chars",
        20,
        "Texts shorter than this are not checked for near-duplicates.",
        type="int",
    ),
    Setting(
        "crawl.classify",
        True,
        "Tag items with the installed classifier (skipped with a log line if none).",
        type="bool",
    ),
    Setting("crawl.store_batch", 200, "Items written to the store per batch.", type="int"),
    # -- health ----------------------------------------------------------------
    Setting(
        "crawl.health_error_rate",
        0.2,
        "Share of failed requests above which an error_rate event is recorded.",
        type="float",
    ),
    Setting(
        "crawl.health_min_rows_ratio",
        0.3,
        "A run whose list pages yield fewer rows per page than this share of the previous "
        "run's is recorded as layout_changed (rows per page, not items: incremental runs "
        "fetch few items but still read full list pages).",
        type="float",
    ),
    Setting(
        "crawl.health_min_previous_rows",
        5.0,
        "Previous runs with fewer list rows per page than this are not compared.",
        type="float",
    ),
    # -- scale-out -------------------------------------------------------------
    Setting(
        "crawl.redis_url",
        "",
        "Redis URL (redis://host:6379/0): share the request queue and de-duplication "
        "across machines through scrapy-redis (empty: local queue).",
    ),
    Setting(
        "crawl.redis_run",
        "",
        "Name of the shared run in Redis: workers with the same name share one queue and one "
        "set of seen requests (empty: the current UTC hour, so the workers of one scheduled "
        "run meet and the next run starts fresh).",
    ),
    # -- practice site ---------------------------------------------------------
    Setting("crawl.sandbox_seed", 42, "Seed of the practice site's generated content.", type="int"),
    Setting(
        "crawl.sandbox_speed",
        1.0,
        "Practice-site clock speed: simulated seconds per real second (3600: an hour a second).",
        type="float",
    ),
    Setting(
        "crawl.sandbox_faults",
        0.03,
        "Share of practice-site pages that fail once (500/429/truncated JSON).",
        type="float",
    ),
]
