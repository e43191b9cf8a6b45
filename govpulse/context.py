"""What every CLI command receives: resolved settings and a lazily opened store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from platformdirs import user_data_dir

from govpulse.settings import Settings

if TYPE_CHECKING:
    from store.base import Store


def resolve_data_dir(settings: Settings) -> Path:
    """The data folder: the setting, else ./data if present, else the user data dir."""
    configured = settings["data_dir"]
    if configured:
        path = Path(configured).expanduser()
    elif Path("data").is_dir():
        path = Path("data")
    else:
        path = Path(user_data_dir("govpulse", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_store_url(settings: Settings) -> str:
    """The store URL: the setting, else sqlite:///<data_dir>/govpulse.db."""
    url = settings["store.url"]
    if url:
        return url
    return f"sqlite:///{(resolve_data_dir(settings) / 'govpulse.db').resolve()}"


@dataclass
class AppContext:
    """Settings plus a store opened on first use and closed by the CLI."""

    settings: Settings
    _store: Store | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        return resolve_data_dir(self.settings)

    @property
    def store_url(self) -> str:
        return resolve_store_url(self.settings)

    def store(self) -> Store:
        if self._store is None:
            from store import open_store

            self._store = open_store(self.store_url, self.settings)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
