"""Alert rules, alert engine, notification channels and the scheduler (govpulse run)."""

from govpulse.settings import Setting

_RULES = [
    Setting(
        "alerts.hot_window_hours",
        24,
        "Hot topic: length of the current window, in hours.",
        type="int",
    ),
    Setting(
        "alerts.hot_baseline_days",
        7,
        "Hot topic: baseline before the window, in days (cut into window-long buckets).",
        type="int",
    ),
    Setting(
        "alerts.hot_k",
        3.0,
        "Hot topic: a term is rising when its count >= baseline mean + k·σ "
        "(σ floored at the Poisson sqrt(mean)).",
        type="float",
    ),
    Setting(
        "alerts.hot_min_count",
        5,
        "Hot topic: minimum messages containing the term in the window.",
        type="int",
    ),
    Setting(
        "alerts.hot_min_sources",
        1,
        "Hot topic: minimum number of distinct sources (weibo, mailbox, forum) the term appears in.",
        type="int",
    ),
    Setting(
        "alerts.urgent_lookback_hours",
        24,
        "Urgent rule: how far back to look for 特急 / 紧急 messages, in hours.",
        type="int",
    ),
    Setting(
        "alerts.overdue_sources",
        ["mailbox", "forum"],
        "Overdue: sources whose unanswered messages count as overdue letters.",
        type="list",
    ),
    Setting(
        "alerts.overdue_min",
        1,
        "Overdue rule: minimum overdue letters in a department before it alerts.",
        type="int",
    ),
    Setting(
        "alerts.rumour_threshold",
        0.7,
        "Rumour rule: minimum rumour score (0-1).",
        type="float",
    ),
    Setting(
        "alerts.rumour_min_spread",
        50,
        "Rumour rule: minimum reposts + comments + likes before a suspected rumour alerts.",
        type="int",
    ),
    Setting(
        "alerts.rumour_lookback_hours",
        72,
        "Rumour rule: how far back to look for suspected rumours, in hours.",
        type="int",
    ),
    Setting(
        "alerts.crawl_lookback_hours",
        24,
        "Crawl health: how far back crawl events are read, in hours.",
        type="int",
    ),
    Setting(
        "alerts.crawl_min_items",
        20,
        "Crawl health: a crawl with 0 items alerts when the previous runs' median was at least this.",
        type="int",
    ),
    Setting(
        "alerts.crawl_error_ratio",
        0.3,
        "Crawl health: errors / pages above this ratio in a run is an error spike.",
        type="float",
    ),
]

_ENGINE = [
    Setting(
        "alerts.group_wait_s",
        60,
        "Seconds a new alert group waits for related alerts before the first message.",
        type="int",
    ),
    Setting(
        "alerts.group_interval_s",
        600,
        "Minimum seconds between messages about new or grown alerts in one group.",
        type="int",
    ),
    Setting(
        "alerts.repeat_interval_s",
        14400,
        "Seconds before an unchanged, still-firing group is announced again.",
        type="int",
    ),
    Setting(
        "alerts.group_by",
        ["rule", "group"],
        "Alert labels that form a group (one message per group).",
        type="list",
    ),
    Setting(
        "alerts.quiet_hours",
        "22:00-07:00",
        "Quiet hours (HH:MM-HH:MM, Asia/Shanghai) when only 特急 alerts are sent; empty: none.",
    ),
    Setting(
        "alerts.inhibit_rules",
        [
            {
                "source": {"rule": "crawl_health", "kind": "down"},
                "target": {"rule": "crawl_health", "kind": "volume_drop"},
                "equal": ["source"],
            }
        ],
        "Inhibition rules (JSON list of {source, target, equal}): a firing source alert "
        "suppresses matching target alerts with equal labels.",
        type="json",
    ),
    Setting(
        "alerts.retry_base_s",
        30,
        "First retry delay after a failed delivery, in seconds (doubles each attempt).",
        type="int",
    ),
    Setting(
        "alerts.retry_max_s",
        3600,
        "Longest delay between delivery retries, in seconds (retries never stop).",
        type="int",
    ),
    Setting(
        "alerts.rate_limits",
        {"dingtalk": 20, "wecom": 20, "feishu": 100},
        "Messages per minute each channel accepts (JSON object channel -> count).",
        type="json",
    ),
    Setting(
        "alerts.dashboard_url",
        "http://127.0.0.1:8050",
        "Base URL of the dashboard, used for the links in alert messages.",
    ),
]

_CHANNELS = [
    Setting(
        "alerts.channels",
        [],
        "Channels to notify (email, webhook, dingtalk, wecom, feishu, apprise, outbox); "
        "empty: every channel with a URL, or the outbox when none has one.",
        type="list",
    ),
    Setting(
        "alerts.email_url",
        "",
        "SMTP target: smtp://user:pass@host:587/?from=a@x.cn&to=b@x.cn,c@x.cn&security=starttls "
        "(security: starttls, ssl or none; smtps:// implies ssl).",
        secret=True,
    ),
    Setting("alerts.webhook_url", "", "Generic webhook URL (receives a JSON POST).", secret=True),
    Setting(
        "alerts.dingtalk_url",
        "",
        "DingTalk robot webhook URL; add &secret=SEC... to sign requests (加签).",
        secret=True,
    ),
    Setting("alerts.wecom_url", "", "WeCom (企业微信) group robot webhook URL.", secret=True),
    Setting(
        "alerts.feishu_url",
        "",
        "Feishu robot webhook URL; add ?secret=... to sign requests (签名校验).",
        secret=True,
    ),
    Setting(
        "alerts.apprise_urls",
        [],
        "Extra targets in apprise URL syntax (e.g. tgram://…, json://host/path), channel 'apprise'.",
        type="list",
        secret=True,
    ),
    Setting(
        "alerts.outbox_file",
        "alerts_outbox.jsonl",
        "Outbox channel file (JSON lines), relative to data_dir.",
    ),
    Setting(
        "alerts.http_timeout_s", 10, "Timeout of one HTTP/SMTP delivery, in seconds.", type="int"
    ),
]

_SCHEDULE = [
    Setting(
        "schedule.spiders",
        {},
        "Spiders to run and their interval in minutes (JSON object name -> minutes), "
        'e.g. {"weibo": 30, "mailbox": 120, "forum": 60}.',
        type="json",
    ),
    Setting(
        "schedule.crawl_command",
        [],
        "Command that runs one crawl, the spider name appended (empty: "
        "python -m govpulse.cli crawl).",
        type="list",
    ),
    Setting(
        "schedule.crawl_timeout_min",
        60.0,
        "A crawl running longer is killed (minutes; fractions allowed).",
        type="float",
    ),
    Setting(
        "schedule.revisit_spiders",
        [],
        "Spiders whose open letters are re-visited for replies (run with --revisit).",
        type="list",
    ),
    Setting(
        "schedule.revisit_interval_min",
        360,
        "Minutes between re-visits of open letters.",
        type="int",
    ),
    Setting(
        "schedule.alerts_interval_min", 5, "Minutes between alert rule evaluations.", type="int"
    ),
    Setting(
        "schedule.digest_time",
        "08:30",
        "Time of day (HH:MM, Asia/Shanghai) of the daily digest 日报; empty: off.",
    ),
    Setting(
        "schedule.retention_days",
        0,
        "Delete messages posted more than this many days ago, daily at 03:30; 0 keeps everything.",
        type="int",
    ),
    Setting(
        "schedule.misfire_grace_s",
        300,
        "A job that missed its time by less than this still runs (seconds).",
        type="int",
    ),
]

SETTINGS = _RULES + _ENGINE + _CHANNELS + _SCHEDULE
