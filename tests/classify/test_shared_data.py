"""Checks against the real data in ../shared/data (skipped when it is absent)."""

from __future__ import annotations

import warnings

import pytest

pytestmark = pytest.mark.shared


def test_urgency_label_ids_resolve_to_real_letters(shared_data, monkeypatch):
    from classify import training as T
    from classify.data import read_table, resolve_label_ids

    labels = read_table("classify/labels/urgency_labels.csv")
    assert len(labels) >= 400
    assert set(labels["label"]) == {"特急", "紧急", "一般", "低"}
    assert not labels.duplicated(["source_file", "id"]).any()
    joined = resolve_label_ids(labels, shared_data / "mailbox")
    assert len(joined) == len(labels)
    assert (joined["title"].str.len() + joined["text"].str.len() > 0).all()
    monkeypatch.setenv("GOVPULSE_SHARED_DATA", str(shared_data))
    ds = T.load_dataset("urgency", "classify/labels/urgency_labels.csv")
    assert 0.25 < ds.holdout.mean() < 0.35


def test_urgency_sampling_file_covers_every_label():
    """Every labelled letter says how it was picked, so held-out figures can be split by it."""
    from classify.data import read_table

    labels = read_table("classify/labels/urgency_labels.csv")
    sampling = read_table("classify/labels/urgency_sampling.csv")
    assert set(sampling["sample"]) <= {
        "initial",
        "keyword",
        "random",
        "keyword3",
        "random3",
        "keyword4",
        "random4",
        "keyword5",
        "random5",
        "model6",
        "random6",
        "rest7",
    }
    assert not sampling.duplicated(["source_file", "id"]).any()
    keys = set(zip(labels["source_file"], labels["id"], strict=True))
    assert set(zip(sampling["source_file"], sampling["id"], strict=True)) == keys


def test_shipped_topic_model_on_raw_letters(shared_data):
    """The 448 raw letters, cut by our tokeniser, score like the pre-cut CV."""
    from classify import training as T
    from classify.tagger import Tagger

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = T.load_dataset("topic", str(shared_data / "topic" / "tipdm2020c_sample_raw.csv"))
        metrics = T.evaluate("topic", Tagger.load_default().models["topic"], ds)
    assert metrics["n"] == 448
    assert metrics["macro_f1"] >= 0.9


#: Letters whose label is not their readings' majority: copies of one letter given
#: one label under the duplicates rule (URGENCY_GUIDELINES.md, session 7).
_DUPLICATE_RULE = {
    ("people_liuyan_gas_2022", "15668091"),
    ("people_liuyan_gas_2022", "15667901"),
}


def test_urgency_labels_are_the_majority_of_their_readings():
    """The label file holds the readings' majority; a third reading exists wherever two differ."""
    import pandas as pd

    from classify.data import read_table

    labels = read_table("classify/labels/urgency_labels.csv")
    readings = read_table("classify/labels/urgency_readings.csv")
    assert len(readings) == len(labels)

    def by_key(table, column):
        keys = zip(table["source_file"], table["id"], strict=True)
        return dict(zip(keys, table[column], strict=True))

    assert by_key(readings, "final") == by_key(labels, "label")
    levels = {"特急", "紧急", "一般", "低"}
    majority_missing = 0
    for row in readings.itertuples():
        key = (row.source_file, row.id)
        assert {row.first, row.second, row.final} <= levels
        if row.first == row.second:
            assert pd.isna(row.third)  # not read a third time
            assert row.final == row.first or key in _DUPLICATE_RULE
            continue
        assert row.third in levels
        if row.third in (row.first, row.second):
            assert row.final == row.third or key in _DUPLICATE_RULE
        else:
            majority_missing += 1  # three different readings: adjudicated, or the middle level
    assert majority_missing <= 10


TOPICS = {"城乡建设", "劳动和社会保障", "教育文体", "商贸旅游", "环境保护", "卫生计生", "交通运输"}


def test_topic_readings_file_is_two_blind_readings_per_letter():
    """Ids and labels only (no text): one row per read letter, two readings of the seven topics."""
    from classify.data import read_table

    readings = read_table("classify/labels/topic_readings.csv")
    assert list(readings.columns) == ["row", "keys", "reader_1", "reader_2"]
    rows = readings["row"].astype(int)
    assert rows.is_unique and rows.min() >= 0
    assert set(readings["keys"]) == {"row_shown", "blind_key"}
    assert set(readings["reader_1"]) <= TOPICS and set(readings["reader_2"]) <= TOPICS


def test_topic_readings_rows_exist_in_the_training_letters(shared_data):
    from classify import training as T
    from classify.data import read_table

    readings_rows = read_table("classify/labels/topic_readings.csv")["row"].astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = T.load_dataset("topic", str(shared_data / "topic" / "tipdm2020c_train_tokenised.csv"))
    assert readings_rows.max() < len(ds) == 8242
