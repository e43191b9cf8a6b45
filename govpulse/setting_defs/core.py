"""Core settings: where data lives and general behaviour."""

from govpulse.settings import Setting

SETTINGS = [
    Setting(
        "data_dir",
        "",
        "Folder for the embedded store, crawl state, models and logs "
        "(empty: ./data if it exists, else the user's data dir).",
    ),
    Setting("timezone", "Asia/Shanghai", "Time zone that naive source times are read in."),
    Setting("log_level", "INFO", "Logging level: DEBUG, INFO, WARNING or ERROR."),
    Setting(
        "sla.days",
        15,
        "Default reply deadline (service level) for letters, in days.",
        type="int",
    ),
    Setting(
        "sla.by_source",
        {"mailbox": 15, "forum": 7, "weibo": 2},
        "Per-source reply deadlines in days (JSON object source -> days); overrides sla.days.",
        type="json",
    ),
    Setting(
        "sla.working_days",
        True,
        "Count deadlines and reply delays in Chinese working days "
        "(public holidays and make-up days handled); false: calendar days.",
        type="bool",
    ),
]
