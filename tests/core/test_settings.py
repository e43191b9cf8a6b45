"""Settings precedence (defaults < file < env < CLI) and documentation."""

import re
from pathlib import Path

import pytest

from govpulse.settings import SettingsError, load, registry

ROOT = Path(__file__).resolve().parents[2]


def test_precedence(tmp_path):
    cfg = tmp_path / "govpulse.toml"
    cfg.write_text(
        "[sla]\ndays = 10\nworking_days = false\n[store]\nbatch_size = 5\n", encoding="utf-8"
    )
    s = load(config=cfg, env={})
    assert (s["sla.days"], s["sla.working_days"], s["store.batch_size"]) == (10, False, 5)
    assert s.origin("sla.days") == str(cfg)
    s = load(config=cfg, env={"GOVPULSE_SLA_DAYS": "12"})
    assert s["sla.days"] == 12 and s.origin("sla.days") == "GOVPULSE_SLA_DAYS"
    s = load(config=cfg, env={"GOVPULSE_SLA_DAYS": "12"}, cli={"sla.days": "20"})
    assert s["sla.days"] == 20 and s.origin("sla.days") == "cli"
    assert s["store.batch_size"] == 5


def test_errors_are_clear(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[sla]\ndays = 'soon'\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"sla\.days"):
        load(config=cfg, env={})
    cfg.write_text("[nope]\nx = 1\n", encoding="utf-8")
    with pytest.raises(SettingsError, match=r"unknown setting 'nope\.x'"):
        load(config=cfg, env={})
    with pytest.raises(SettingsError, match="does not exist"):
        load(config=tmp_path / "missing.toml", env={})
    with pytest.raises(SettingsError, match="not a valid bool"):
        load(env={"GOVPULSE_SLA_WORKING_DAYS": "perhaps"})


def test_every_setting_has_help_and_is_documented():
    docs = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in (ROOT / "docs").glob("*.md"):
        docs += path.read_text(encoding="utf-8")
    missing = []
    for key, setting in registry().items():
        assert setting.help.strip(), key
        if not re.search(rf"`{re.escape(key)}`", docs):
            missing.append(key)
    assert not missing, f"settings not documented in README.md or docs/: {missing}"
