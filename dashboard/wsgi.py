"""WSGI entry point for a production server with several worker processes.

    gunicorn -w 4 -b 127.0.0.1:8050 dashboard.wsgi:application

Settings come from govpulse.toml / GOVPULSE_* variables as for the CLI.
Each worker opens its own store connection on first use (the app is
given the store URL, not an open store).
"""

from __future__ import annotations

from dashboard.app import create_app
from govpulse.context import resolve_data_dir, resolve_store_url
from govpulse.settings import load

_settings = load()
application = create_app(
    resolve_store_url(_settings), _settings, data_dir=resolve_data_dir(_settings)
).server
