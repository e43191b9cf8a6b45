"""Declared settings, one module per product area.

Each module exposes ``SETTINGS: list[Setting]``.  Add a module here when an
area needs settings, and list it in ``_MODULES``; document every key in
README.md or docs/ (tests/test_settings_documented.py checks).
"""

from __future__ import annotations

import importlib

from govpulse.settings import Setting

_MODULES = ("core", "store", "crawl", "classify", "dashboard", "alerts")


def all_settings() -> list[Setting]:
    """Return the settings of every area that exists."""
    out: list[Setting] = []
    for name in _MODULES:
        try:
            module = importlib.import_module(f"govpulse.setting_defs.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"govpulse.setting_defs.{name}":
                continue
            raise
        out.extend(module.SETTINGS)
    return out
