"""skops save/load: trusted types only, checksum against the card, clear errors."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest
import skops.io as sio

from classify.modelio import (
    TRUSTED,
    ModelUnavailable,
    card_path,
    load_model,
    model_path,
    save_model,
    sha256,
)
from classify.pipelines import TASKS
from classify.tagger import default_model_dir


class Gadget:
    """A type no trusted list contains (stands for an attacker's payload)."""

    def __init__(self) -> None:
        self.x = 1


@pytest.mark.parametrize("task", TASKS)
def test_saved_model_needs_only_trusted_types(tiny_model_dir, task):
    untrusted = set(sio.get_untrusted_types(file=model_path(tiny_model_dir, task)))
    assert untrusted <= set(TRUSTED), untrusted - set(TRUSTED)
    model, card = load_model(tiny_model_dir, task)
    assert card["task"] == task and card["sha256"] == sha256(model_path(tiny_model_dir, task))
    assert hasattr(model, "predict_proba")


@pytest.mark.parametrize("task", TASKS)
def test_shipped_models_need_only_trusted_types_and_are_small(task):
    path = model_path(default_model_dir(), task)
    assert path.is_file(), "shipped model missing: run `make models`"
    assert set(sio.get_untrusted_types(file=path)) <= set(TRUSTED)
    assert path.stat().st_size < 8_000_000
    card = json.loads(card_path(default_model_dir(), task).read_text(encoding="utf-8"))
    assert card["sha256"] == sha256(path) and card["metrics"]


def _copy(src, dst, task="topic"):
    dst.mkdir(exist_ok=True)
    for p in (model_path(src, task), card_path(src, task)):
        shutil.copy(p, dst / p.name)
    return dst


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelUnavailable, match="missing"):
        load_model(tmp_path, "topic")


def test_modified_file_is_refused_by_checksum(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path / "m")
    with model_path(d, "topic").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelUnavailable, match="checksum"):
        load_model(d, "topic")


def test_missing_card_is_refused(tiny_model_dir, tmp_path):
    d = _copy(tiny_model_dir, tmp_path / "m")
    card_path(d, "topic").unlink()
    with pytest.raises(ModelUnavailable, match="card missing"):
        load_model(d, "topic")


def test_untrusted_type_is_refused_even_with_matching_card(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    sio.dump({"clf": Gadget()}, model_path(d, "topic"))
    card_path(d, "topic").write_text(json.dumps({"sha256": sha256(model_path(d, "topic"))}))
    with pytest.raises(ModelUnavailable, match="untrusted"):
        load_model(d, "topic")


def test_corrupt_archive_with_matching_card(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    model_path(d, "topic").write_bytes(b"PK\x03\x04 not really a zip")
    card_path(d, "topic").write_text(json.dumps({"sha256": sha256(model_path(d, "topic"))}))
    with pytest.raises(ModelUnavailable, match="cannot be read"):
        load_model(d, "topic")


def test_save_refuses_types_outside_the_list(tmp_path):
    with pytest.raises(ModelUnavailable, match="TRUSTED"):
        save_model({"clf": Gadget()}, tmp_path, "topic", {})
    assert not model_path(tmp_path, "topic").exists()


def test_saved_archive_is_compressed(tiny_model_dir):
    with zipfile.ZipFile(model_path(tiny_model_dir, "topic")) as zf:
        assert any(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
