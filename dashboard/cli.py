"""``govpulse serve`` (the dashboard) and ``govpulse user`` (accounts and roles)."""

from __future__ import annotations

import click

from govpulse.context import AppContext


@click.command("serve")
@click.option(
    "--host", default=None, help="Address to listen on (default: dashboard.host, 127.0.0.1)."
)
@click.option("--port", "-p", type=int, default=None, help="Port (default: dashboard.port, 8050).")
@click.option(
    "--workers", type=int, default=None, help="Worker processes (default: dashboard.workers)."
)
@click.option(
    "--threads", type=int, default=8, show_default=True, help="Threads per worker process."
)
@click.pass_obj
def serve_cmd(
    app: AppContext, host: str | None, port: int | None, workers: int | None, threads: int
) -> None:
    """Serve the dashboard (log in with an account from `govpulse user add`).

    Runs waitress (a production WSGI server with a fixed thread pool).  With
    --workers N the listening socket is opened once and N forked processes
    serve it, each opening its own store connection.
    """
    import socket

    from dashboard.app import create_app

    settings = app.settings
    host = host or settings["dashboard.host"]
    port = port or int(settings["dashboard.port"])
    workers = max(1, workers or int(settings["dashboard.workers"]))
    users = _users(app)
    if not users.list():
        click.echo(
            "warning: no dashboard users yet; create one with `govpulse user add NAME --role admin`",
            err=True,
        )
    # The URL, not an open store: each worker process opens its own.
    server = create_app(app.store_url, settings, data_dir=app.data_dir).server
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    sock.listen(128)
    click.echo(
        f"govpulse dashboard on http://{host}:{port}/ ({workers} worker(s) x {threads} threads)",
        err=True,
    )
    if workers == 1:
        _serve(server, sock, threads)
        return
    _prefork(server, sock, threads, workers)


def _serve(server, sock, threads: int) -> None:
    from waitress import serve

    serve(server, sockets=[sock], threads=threads, ident="govpulse")


def _prefork(server, sock, threads: int, workers: int) -> None:
    """Fork `workers` processes that all accept on the same socket; stop them on exit."""
    import multiprocessing
    import signal

    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_serve, args=(server, sock, threads), daemon=True)
        for _ in range(workers)
    ]
    for proc in procs:
        proc.start()

    def _stop(*_args) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    try:
        while all(proc.is_alive() for proc in procs):
            procs[0].join(1.0)
        raise click.ClickException("a dashboard worker exited; stopping the others")
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        for proc in procs:
            proc.join(5)


def _users_path(app: AppContext):
    from pathlib import Path

    configured = app.settings["dashboard.users_db"]
    return Path(configured).expanduser() if configured else app.data_dir / "users.db"


def _users(app: AppContext):
    from dashboard.users import UserStore

    return UserStore(_users_path(app), int(app.settings["dashboard.login_max_failures"]))


@click.group("user")
def user_group() -> None:
    """Manage dashboard accounts (roles: leader, press, staff, admin)."""


def _run(action) -> None:
    from dashboard.users import UserError

    try:
        action()
    except UserError as exc:
        raise click.ClickException(str(exc)) from None


@user_group.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["leader", "press", "staff", "admin"]), required=True)
@click.password_option("--password", help="Prompted (twice) when not given; at least 8 characters.")
@click.pass_obj
def user_add(app: AppContext, username: str, role: str, password: str) -> None:
    """Create an account."""
    _run(lambda: _users(app).add(username, password, role))
    click.echo(f"added {username} ({role})")


@user_group.command("remove")
@click.argument("username")
@click.pass_obj
def user_remove(app: AppContext, username: str) -> None:
    """Delete an account (its sessions stop working)."""
    _run(lambda: _users(app).remove(username))
    click.echo(f"removed {username}")


@user_group.command("passwd")
@click.argument("username")
@click.password_option("--password", help="Prompted (twice) when not given.")
@click.pass_obj
def user_passwd(app: AppContext, username: str, password: str) -> None:
    """Change a password (the user's open sessions end)."""
    _run(lambda: _users(app).set_password(username, password))
    click.echo(f"password changed for {username}")


@user_group.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(["leader", "press", "staff", "admin"]))
@click.pass_obj
def user_role(app: AppContext, username: str, role: str) -> None:
    """Change an account's role."""
    _run(lambda: _users(app).set_role(username, role))
    click.echo(f"{username} is now {role}")


@user_group.command("list")
@click.pass_obj
def user_list(app: AppContext) -> None:
    """List accounts and roles."""
    for name, role, created in _users(app).list():
        click.echo(f"{name}\t{role}\t{created}")
