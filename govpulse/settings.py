"""One settings registry: defaults < govpulse.toml < GOVPULSE_* env < CLI flags.

Every setting is declared once, with a type, a default and a line of help,
in one of the `govpulse.setting_defs` modules (one per area of the product,
so each area owns its own list).  A test checks that every declared setting
is documented in README.md or docs/.

Keys are dotted (``store.url``); in ``govpulse.toml`` they live in tables
(``[store] url = ...``); in the environment they are upper-cased with dots
turned into underscores (``GOVPULSE_STORE_URL``).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "GOVPULSE_"


class SettingsError(ValueError):
    """A setting that is unknown or has a value of the wrong type."""


@dataclass(frozen=True, slots=True)
class Setting:
    """One declared setting."""

    key: str
    default: Any
    help: str
    type: str = "str"  # str | int | float | bool | list | json
    secret: bool = False  # masked when settings are printed

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.key.upper().replace(".", "_")

    def coerce(self, value: Any, origin: str) -> Any:
        """Convert a raw value (TOML value or env/CLI string) to this setting's type."""
        try:
            return _COERCE[self.type](value)
        except (TypeError, ValueError) as exc:
            raise SettingsError(
                f"{self.key}: {value!r} from {origin} is not a valid {self.type} ({exc})"
            ) from None


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true/false")


def _to_list(value: Any) -> list[str]:
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in text.split(",") if part.strip()]


def _to_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


_COERCE = {
    "str": lambda v: "" if v is None else str(v),
    "int": int,
    "float": float,
    "bool": _to_bool,
    "list": _to_list,
    "json": _to_json,
}


def registry() -> dict[str, Setting]:
    """Return every declared setting by key (collected from setting_defs)."""
    from govpulse import setting_defs

    out: dict[str, Setting] = {}
    for setting in setting_defs.all_settings():
        if setting.key in out:
            raise SettingsError(f"setting {setting.key} declared twice")
        if setting.type not in _COERCE:
            raise SettingsError(f"setting {setting.key} has unknown type {setting.type}")
        out[setting.key] = setting
    return out


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in table.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, full + ".")
        else:
            yield full, value


class Settings(Mapping[str, Any]):
    """Resolved settings; read with ``settings["store.url"]``."""

    def __init__(self, values: dict[str, Any], origins: dict[str, str]) -> None:
        self._values = values
        self._origins = origins

    def __getitem__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise SettingsError(f"unknown setting {key!r}") from None

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def origin(self, key: str) -> str:
        """Where a value came from: default, a file path, an env var or 'cli'."""
        return self._origins[key]

    def with_overrides(self, overrides: Mapping[str, Any], origin: str = "cli") -> Settings:
        """Return a copy with some values replaced (validated like CLI flags)."""
        reg = registry()
        values = dict(self._values)
        origins = dict(self._origins)
        for key, raw in overrides.items():
            if key not in reg:
                raise SettingsError(f"unknown setting {key!r}")
            values[key] = reg[key].coerce(raw, origin)
            origins[key] = origin
        return Settings(values, origins)

    def masked(self) -> dict[str, Any]:
        """Values with secrets hidden, for printing and logs."""
        reg = registry()
        return {k: ("***" if reg[k].secret and v else v) for k, v in sorted(self._values.items())}


def default_config_path() -> Path | None:
    """``./govpulse.toml`` if present, else None."""
    path = Path("govpulse.toml")
    return path if path.is_file() else None


def load(
    config: str | os.PathLike[str] | None = None,
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve settings from defaults, a TOML file, the environment and CLI flags."""
    reg = registry()
    values = {k: s.default for k, s in reg.items()}
    origins = dict.fromkeys(reg, "default")

    path = Path(config) if config else default_config_path()
    if config and not Path(config).is_file():
        raise SettingsError(f"config file {config} does not exist")
    if path is not None:
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: invalid TOML: {exc}") from None
        for key, raw in _flatten(table):
            if key not in reg:
                raise SettingsError(f"{path}: unknown setting {key!r}")
            values[key] = reg[key].coerce(raw, str(path))
            origins[key] = str(path)

    env = os.environ if env is None else env
    for key, setting in reg.items():
        if setting.env_var in env:
            values[key] = setting.coerce(env[setting.env_var], setting.env_var)
            origins[key] = setting.env_var

    for key, raw in (cli or {}).items():
        if raw is None:
            continue
        if key not in reg:
            raise SettingsError(f"unknown setting {key!r}")
        values[key] = reg[key].coerce(raw, "cli")
        origins[key] = "cli"
    return Settings(values, origins)
