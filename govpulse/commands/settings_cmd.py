"""`govpulse settings`: show every setting, its value and where it came from."""

from __future__ import annotations

import click

from govpulse.context import AppContext
from govpulse.settings import registry


@click.command("settings")
@click.option("--all", "show_all", is_flag=True, help="Include settings left at their default.")
@click.pass_obj
def settings_cmd(app: AppContext, show_all: bool) -> None:
    """List resolved settings (secrets masked) with their origin and help."""
    reg = registry()
    for key, value in app.settings.masked().items():
        origin = app.settings.origin(key)
        if origin == "default" and not show_all:
            continue
        click.echo(f"{key} = {value!r}    [{origin}]  {reg[key].help}")
    click.echo(f"store: {app.store_url}", err=True)
