"""`govpulse demo`: the whole product on one machine, with no network.

It starts the practice site (generated content in the real shapes of
mobile Weibo, the 人民网 留言板 API, two mayor-mailbox sites and a Discuz!
问政 board), serves the dashboard, runs the three spiders against the
practice site through the full pipeline (normalise, mask, de-duplicate,
classify with the shipped models, store in the embedded SQLite store),
evaluates the alert rules (delivering to a local outbox shown on the
dashboard), then starts the scheduler so new posts keep arriving and being
collected while it runs.

Every part runs as its own `govpulse` process with settings passed as
``GOVPULSE_*`` environment variables — exactly how a deployment runs them
(Scrapy's reactor cannot restart, and the scheduler and dashboard are
separate services).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from govpulse.context import AppContext
from govpulse.parent_watch import watch_parent
from govpulse.settings import Settings, registry

log = logging.getLogger(__name__)

DEMO_USER = "demo"
DEMO_PASSWORD = "govpulse-demo"
SPIDERS = ("weibo", "mailbox", "forum")
#: Set in the demo's children: the pid of the demo that started them.
PARENT_ENV = "GOVPULSE_DEMO_PARENT"

#: Settings the demo changes from the production defaults (a user's own
#: --set / env / toml values still win).
DEMO_SETTINGS: dict[str, Any] = {
    # The practice site is local: no need to be polite to it.
    "crawl.download_delay": 0,
    "crawl.autothrottle": False,
    "crawl.concurrent_per_domain": 8,
    "crawl.store_batch": 20,  # data shows on the dashboard while crawling
    "crawl.close_after_seconds": 120,
    "alerts.channels": ["outbox"],
    "alerts.quiet_hours": "",  # a demo shows its alerts at any hour
    "alerts.group_wait_s": 5,
    "alerts.group_interval_s": 60,
    "schedule.spiders": {"weibo": 2, "mailbox": 3, "forum": 3},
    "schedule.revisit_spiders": ["mailbox"],
    "schedule.revisit_interval_min": 10,
    "schedule.alerts_interval_min": 1,
    "schedule.crawl_timeout_min": 5,
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def child_env(settings: Settings, overrides: Mapping[str, Any]) -> dict[str, str]:
    """Environment for child processes: the parent's explicit settings + demo values."""
    reg = registry()
    env = dict(os.environ)
    for key, value in overrides.items():
        if key in reg and settings.origin(key) == "default":
            env[reg[key].env_var] = _env_value(value)
    for key in settings:
        if settings.origin(key) != "default":
            env[reg[key].env_var] = _env_value(settings[key])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def wait_http(url: str, timeout: float) -> bool:
    """Poll `url` until it answers (any HTTP status) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.3)
    return False


class Demo:
    """Starts, watches and stops the demo's processes."""

    def __init__(self, app: AppContext, data_dir: Path, host: str, port: int, scheduler: bool):
        self.app = app
        self.data_dir = data_dir
        self.host = host
        self.port = port
        self.scheduler = scheduler
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = threading.Event()
        self.logs = data_dir / "logs"

    # -- processes -------------------------------------------------------
    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        out = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "govpulse.cli", *args],
            env={**env, PARENT_ENV: str(os.getpid())},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so a Ctrl-C reaches only the demo, which stops them in order
        )
        self.children.append((name, proc))
        return proc

    def stop(self) -> None:
        self.stopping.set()
        for _, proc in reversed(self.children):
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + 15
        for _, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()

    # -- the run ---------------------------------------------------------
    def run(self) -> None:
        from crawlers.sandbox.generator import Clock, World
        from crawlers.sandbox.server import Sandbox, make_server

        settings = self.app.settings
        # Real time (speed 1): new posts appear as the day goes on, with honest timestamps.
        sandbox = Sandbox(
            World(seed=settings["crawl.sandbox_seed"]), Clock(speed=settings["crawl.sandbox_speed"])
        )
        server = make_server("127.0.0.1", 0, sandbox)
        threading.Thread(target=server.serve_forever, name="sandbox", daemon=True).start()
        site = f"http://127.0.0.1:{server.server_port}"

        secret_file = self.data_dir / "dashboard-secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_hex(32), encoding="utf-8")
        dashboard_url = f"http://{self.host}:{self.port}"
        overrides = {
            **DEMO_SETTINGS,
            "data_dir": str(self.data_dir),
            "store.url": f"sqlite:///{(self.data_dir / 'govpulse.db').resolve()}",
            "crawl.base_url": site,
            "alerts.dashboard_url": dashboard_url,
            "dashboard.secret_key": secret_file.read_text(encoding="utf-8").strip(),
        }
        env = child_env(settings, overrides)
        self._ensure_user(env)

        with socket.socket() as probe:
            if probe.connect_ex((self.host, self.port)) == 0:
                raise click.ClickException(
                    f"port {self.port} on {self.host} is in use (another demo?); use --port"
                )
        self.spawn("dashboard", ["serve", "--host", self.host, "--port", str(self.port)], env)
        click.echo(f"practice site: {site}/")
        if not wait_http(f"{dashboard_url}/login", timeout=60):
            raise click.ClickException(
                f"dashboard did not start; see {self.logs / 'dashboard.log'}"
            )
        click.echo(f"dashboard: {dashboard_url}/   login: {DEMO_USER} / {DEMO_PASSWORD}")
        click.echo(f"logs: {self.logs}/   outbox: {self.data_dir / 'alerts_outbox.jsonl'}")
        click.echo(
            "crawling the practice site (first data appears on the dashboard within a minute) …"
        )

        crawls = [self.spawn(f"crawl-{name}", ["crawl", name], env) for name in SPIDERS]
        for proc in crawls:
            while proc.poll() is None and not self.stopping.is_set():
                time.sleep(0.5)
        if self.stopping.is_set():
            return
        failed = [name for (name, p) in self.children if name.startswith("crawl-") and p.returncode]
        if failed:
            click.echo(f"warning: {', '.join(failed)} ended with errors (see logs)", err=True)
        evaluate = self.spawn("alerts-evaluate", ["alerts", "evaluate"], env)
        evaluate.wait()
        click.echo("first crawl done; alert rules evaluated (see 预警 on the dashboard)")
        if self.scheduler:
            self.spawn("scheduler", ["run"], env)
            click.echo("scheduler running: spiders every 2–3 minutes, alerts every minute")
        click.echo("ready — press Ctrl-C to stop")
        while not self.stopping.is_set():
            for name, proc in self.children:
                if name in ("dashboard", "scheduler") and proc.poll() is not None:
                    raise click.ClickException(
                        f"{name} stopped (exit {proc.returncode}); see {self.logs / (name + '.log')}"
                    )
            self.stopping.wait(1.0)

    def _ensure_user(self, env: dict[str, str]) -> None:
        from dashboard.users import UserError, UserStore

        users = UserStore(self.data_dir / "users.db")
        try:
            users.add(DEMO_USER, DEMO_PASSWORD, "admin")
        except UserError:
            users.set_password(DEMO_USER, DEMO_PASSWORD)
        env[registry()["dashboard.users_db"].env_var] = str(self.data_dir / "users.db")


def follow_parent() -> None:
    """In a demo child: stop when the demo is gone, even when it was killed outright.

    The children run in their own sessions (so a Ctrl-C reaches only the
    demo, which stops them in order); without this watch a SIGKILLed demo
    would leave its dashboard serving on the port.
    """
    raw = os.environ.get(PARENT_ENV, "")
    if not raw.isdigit():
        return
    parent = int(raw)

    def stop() -> None:
        log.warning("the demo (pid %d) is gone: stopping", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    watch_parent(parent, stop)


@click.command("demo")
@click.option("--port", default=8050, show_default=True, help="Dashboard port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Dashboard address.")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data/demo"),
    show_default=True,
    help="Where the demo keeps its store, logs and outbox.",
)
@click.option("--no-scheduler", is_flag=True, help="Crawl once; do not keep collecting.")
@click.option("--reset", is_flag=True, help="Delete the demo's data first.")
@click.pass_obj
def demo_cmd(
    app: AppContext, port: int, host: str, data_dir: Path, no_scheduler: bool, reset: bool
) -> None:
    """Run the whole product against a local practice site (no network needed)."""
    if reset and data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    demo = Demo(app, data_dir.resolve(), host, port, scheduler=not no_scheduler)

    def on_signal(signum: int, frame: Any) -> None:
        demo.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        demo.run()
    finally:
        demo.stop()
        click.echo("demo stopped")
