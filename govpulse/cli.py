"""The ``govpulse`` command line.

Sub-commands live beside the code they drive (``crawlers.cli``,
``classify.cli`` …) and are imported only when run, so ``govpulse --help``
stays fast and a Scrapy or Dash import never slows an unrelated command.
A command whose module is not installed simply does not exist.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys

import click

from govpulse import __version__
from govpulse.context import AppContext
from govpulse.settings import SettingsError, load

#: name -> "module:attribute" of a click command.  Order is the help order.
COMMANDS: dict[str, str] = {
    "import": "govpulse.commands.importing:import_cmd",
    "search": "govpulse.commands.querying:search_cmd",
    "stats": "govpulse.commands.querying:stats_cmd",
    "export": "govpulse.commands.querying:export_cmd",
    "settings": "govpulse.commands.settings_cmd:settings_cmd",
    "crawl": "crawlers.cli:crawl_cmd",
    "sandbox": "crawlers.cli:sandbox_cmd",
    "classify": "classify.cli:classify_cmd",
    "train": "classify.cli:train_cmd",
    "evaluate": "classify.cli:evaluate_cmd",
    "reclassify": "classify.cli:reclassify_cmd",
    "store": "store.cli:store_group",
    "serve": "dashboard.cli:serve_cmd",
    "user": "dashboard.cli:user_group",
    "run": "alerts.cli:run_cmd",
    "alerts": "alerts.cli:alerts_group",
    "demo": "govpulse.demo:demo_cmd",
}


def _available(target: str) -> bool:
    module = target.split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


class LazyGroup(click.Group):
    """A click group that imports each sub-command on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, target in COMMANDS.items() if _available(target)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None or not _available(target):
            return None
        module_name, attr = target.split(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attr, None)
        if not isinstance(command, click.Command):
            return None
        return command


def _parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: use KEY=VALUE", param_hint="--set")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="govpulse")
@click.option(
    "--store", "store_url", metavar="URL", help="Store URL (sqlite:///path or http://host:9200)."
)
@click.option(
    "--config",
    "config",
    metavar="FILE",
    type=click.Path(dir_okay=False),
    help="Settings file (default ./govpulse.toml).",
)
@click.option(
    "--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override any setting (repeatable)."
)
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.pass_context
def main(
    ctx: click.Context,
    store_url: str | None,
    config: str | None,
    sets: tuple[str, ...],
    verbose: bool,
) -> None:
    """govpulse: monitor what citizens write to and about a government."""
    cli = _parse_sets(sets)
    if store_url:
        cli["store.url"] = store_url
    try:
        settings = load(config=config, cli=cli)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    level = "DEBUG" if verbose else str(settings["log_level"]).upper()
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if os.environ.get("GOVPULSE_DEMO_PARENT"):
        from govpulse.demo import follow_parent

        follow_parent()
    app = AppContext(settings)
    ctx.obj = app
    ctx.call_on_close(app.close)


if __name__ == "__main__":  # pragma: no cover
    main()
