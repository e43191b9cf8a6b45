"""Custom transformers follow scikit-learn conventions; cue features count what they should."""

from __future__ import annotations

import numpy as np
from sklearn.utils.estimator_checks import parametrize_with_checks

from classify.features import LogCountScaler, rumour_cue_counts, to_float, urgency_cue_counts


@parametrize_with_checks([LogCountScaler()])
def test_sklearn_conventions(estimator, check):
    check(estimator)


def test_log_count_scaler_compresses_counts():
    X = np.array([[0.0, 1.0], [10.0, 1.0], [1_000_000.0, 0.0]])
    out = LogCountScaler().fit(X).transform(X)
    assert out.max() <= 1.0 + 1e-9
    assert out[2, 0] == 1.0 and 0 < out[1, 0] < 0.2


def test_urgency_cues_by_group():
    m = urgency_cue_counts(["楼道 燃气泄漏 闻到 煤气", "建议 增设 公交", "", None]).toarray()
    assert m.shape == (4, 3)
    assert m[0, 0] > 0 and m[1, 2] > 0 and m[2].sum() == 0 and m[3].sum() == 0


def test_structure_column_counts_building_damage_words_last():
    texts = [
        "村里 采石场 放炮 把 房屋 震裂 了 , 墙上 裂缝 越来越 大",
        "小区 电梯 又 坠落 两层 , 里面 有人",
        "小区 燃气泄漏 请 马上 处理",
        "请问 公积金 怎么 提取",
        "",
        None,
    ]
    six = urgency_cue_counts(texts, head_chars=30).toarray()
    seven = urgency_cue_counts(texts, head_chars=30, structure=True).toarray()
    assert seven.shape == (6, 7)
    np.testing.assert_array_equal(seven[:, :6], six)
    # distinct words, log1p: 放炮 震裂 裂缝 -> log(4); 电梯 坠落 -> log(3)
    np.testing.assert_allclose(seven[:, 6], np.log1p([3, 2, 0, 0, 0, 0]))
    # without the title columns: the three whole-text columns, then the structure one
    four = urgency_cue_counts(texts, structure=True).toarray()
    np.testing.assert_array_equal(four, seven[:, [0, 1, 2, 6]])


def test_structure_words_are_not_negated():
    # a formal verdict or a crack named in a denial is still what the letter is about
    m = urgency_cue_counts(["没有 裂缝 吗 ? 鉴定为 危房"], structure=True).toarray()
    assert m[0, 3] == np.log1p(3)


def test_rumour_cues_and_refutation():
    m = rumour_cue_counts(["转发 扩散 据说 有毒 ！！", "经核实 系 谣言"]).toarray()
    assert m[0, 0] > 0 and m[0, 2] > 0
    assert m[1, 1] > 0


def test_to_float_handles_blanks_and_booleans():
    out = to_float(np.array([["1", None, "True", "abc", float("nan")]], dtype=object))
    assert out.tolist() == [[1.0, 0.0, 1.0, 0.0, 0.0]]


def test_compact_vectorizer_round_trips_through_skops_with_same_output():
    import skops.io as sio

    from classify.features import CompactTfidfVectorizer
    from classify.modelio import TRUSTED
    from classify.text import split_tokens

    docs = ["社保 补办 流程", "公积金 提取 流程", "社保 缴费 政策"]
    vec = CompactTfidfVectorizer(tokenizer=split_tokens, token_pattern=None, max_features=4).fit(
        docs
    )
    vocab = dict(vec.vocabulary_)
    blob = sio.dumps(vec)
    assert vec.vocabulary_ == vocab  # saving does not touch the live object
    back = sio.loads(blob, trusted=list(TRUSTED))
    assert back.vocabulary_ == vocab
    assert (back.transform(docs) != vec.transform(docs)).nnz == 0
