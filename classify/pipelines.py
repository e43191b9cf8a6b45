"""One scikit-learn Pipeline per task.

Every pipeline takes already-prepared text (``classify.text.prepare_chars``:
normalised text, no jieba cut), so the tagger prepares a message once for
all three models.  Character 1–3-grams (punctuation, symbols and spaces
skipped), hashed into 2**20 columns by :class:`classify.hashing.HashedNgrams`
and weighted per task by :class:`classify.hashing.HashedTfidf`.  They
replaced jieba word 1–2-grams plus character 2–3-grams of the cut tokens:
by the same evaluation and hyper-parameters (topic 5-fold CV 0.9252 vs
0.9253, urgency held-out 0.678 vs 0.639, rumour time-split ROC-AUC 0.938 vs
0.930) they do as well or better, and cutting was ~60 % of the tagging
time.  The pre-cut topic training data is read as it is: its character
n-grams ignore the spaces between tokens.  All three tasks use the same
``HashedNgrams`` parameters (:data:`NGRAMS`), so the tagger computes the
n-gram counts of a batch once for all of them.  Models trained with word
n-grams still load and get jieba tokens (:func:`input_form`).  The
hyper-parameters below were chosen with the word features and kept as they
were for the comparison.
"""

from __future__ import annotations

from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from classify.cues import HEAD_CHARS
from classify.features import (
    LogCountScaler,
    rumour_cue_counts,
    to_float,
    urgency_cue_counts,
)
from classify.forward import ForwardCalibratedClassifier
from classify.hashing import HashedNgrams, HashedTfidf
from classify.topic_head import HeadTfidf

TASKS = ("topic", "urgency", "rumour")
#: Metadata columns given to the rumour model beside the text (blank -> 0).
RUMOUR_META = ("reposts", "comments", "likes", "followers", "verified")
#: Those the shipped rumour model uses: not likes, which Weibo barely had before
#: late 2012 (median 0-1 in 2010-2012 posts, 3-150 later), so what a model
#: learns from them does not carry over (forward-chained CV AUC 0.937 without, 0.929 with).
RUMOUR_META_USED = ("reposts", "comments", "followers", "verified")
#: The one n-gram analysis every task uses (equal parameters -> computed once per batch).
NGRAMS = {"n_bits": 20, "word_ngrams": None, "char_ngrams": (1, 3), "drop_nonword": True}


def input_form(model: object) -> str:
    """The text form a fitted or unfitted model reads: "chars" or "tokens".

    "chars" (``classify.text.prepare_chars``) when the model has hashed
    n-gram steps and none of them reads words; anything else (models
    trained with word n-grams, or before hashing) was trained on jieba
    tokens and gets them (``classify.text.prepare``).
    """
    found: list[HashedNgrams] = []
    seen: set[int] = set()

    def walk(obj: object) -> None:
        if id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float | type):
            return
        seen.add(id(obj))
        if isinstance(obj, HashedNgrams):
            found.append(obj)
            return
        if isinstance(obj, list | tuple):
            children: list[object] = list(obj)
        elif isinstance(obj, dict):
            children = list(obj.values())
        elif hasattr(obj, "__dict__") and type(obj).__module__.split(".")[0] in (
            "sklearn",
            "classify",
        ):
            children = list(vars(obj).values())
        else:
            return
        for child in children:
            walk(child)

    walk(model)
    if found and all(getattr(h, "word_ngrams", None) is None for h in found):
        return "chars"
    return "tokens"


def task_form(task: str) -> str:
    """The input form the current builder of a task trains on."""
    return input_form(BUILDERS[task]())


def text_features(
    min_df: int = 2, max_df: float = 0.5, max_features: int | None = None
) -> Pipeline:
    """Hashed character n-grams (:data:`NGRAMS`), IDF-weighted with document-frequency cuts."""
    return Pipeline(
        [
            ("ngrams", HashedNgrams(**NGRAMS)),  # type: ignore[arg-type]
            ("tfidf", HashedTfidf(min_df=min_df, max_df=max_df, max_features=max_features)),
        ]
    )


def build_topic(C: float = 4.0, head_weight: float = 0.5) -> Pipeline:
    """Topic: hashed character TF-IDF of the whole letter and of its head (title),
    linear SVM, sigmoid-calibrated for topic_score.

    Only the 100k most frequent n-gram columns seen in at least two letters
    (and in at most half of them) get a weight: pruning rare and ubiquitous
    n-grams is worth about a point of 5-fold macro-F1 over keeping all.
    C=4 was chosen by nested cross-validation: in each outer fold of a
    5-fold split grouped by near-duplicate cluster, a 3-fold grouped CV of
    the training part picked C from 0.5, 1, 2, 4, 8 (it picked 8, 4, 2, 4, 4;
    outer macro-F1 0.922 against 0.920 for C=1).  The head block
    (:class:`classify.topic_head.HeadTfidf`: the first 20 word characters,
    i.e. the title, weighted 0.5) took grouped CV from 0.9217 to 0.9289
    (better in each fold); self-training on the unlabelled letters, soft
    votes with logistic regression, ridge or naive Bayes, and per-class
    bias offsets did not help (0.914-0.924).  Character 1-4-grams,
    1-2-grams, 2-3-grams, no max_features, other min_df / max_df, logistic
    regression, ridge, SGD and NB-SVM all scored the same or lower
    (docs/classify.md).
    """
    return Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        ("text", text_features(min_df=2, max_df=0.5, max_features=100_000)),
                        ("head", HeadTfidf(weight=head_weight)),
                    ]
                ),
            ),
            (
                "clf",
                CalibratedClassifierCV(
                    LinearSVC(C=C, class_weight="balanced"), method="sigmoid", cv=3, ensemble=False
                ),
            ),
        ]
    )


def build_urgency(C: float = 64.0) -> Pipeline:
    """Urgency: hashed character TF-IDF plus cue-lexicon counts, balanced logistic regression.

    min_df=2 and C=64 were chosen by 5-fold CV on the tuning part only
    (0.777 macro-F1, against 0.749 for min_df=1, C=16); the held-out part
    was not looked at.  Re-checked with 1,623 labels (tuning part, 5-fold,
    mean of 3 seeds, with ``classify.decide``'s weighting): C=64 0.736,
    C=16 0.732, C=256 0.729.  The cue counts read the urgency lexicons of
    ``classify.cues`` with negated / hypothetical mentions left out.  A
    second TF-IDF of the title alone added 0.005 and was left out (it would
    need a trusted function and a second n-gram count per batch).  Only the
    50k most frequent columns are kept (0.739 against 0.736 for all 206k and
    0.736 for 100k): the model file shrinks from 3.7 MB and the tagger's
    column union stays small.

    Third round (2,283 labels; 5-fold CV on the tuning part, mean of 3
    seeds, each variant scored with its best ``classify.decide`` weights):
    the cue counts of the title / first 30 characters as three more columns
    (``head_chars``): 0.743 against 0.735 without on 1,484 tuning letters,
    0.734 against 0.731 on the final 1,624.  Head windows of 20 and 45
    characters 0.734 / 0.741, the whole-text critical lexicon in the head
    too 0.741, the cue counts doubled 0.732, C=32 / 128 0.736 / 0.737 (all
    on 1,484); counts of recency (今天, 正在 …), victim (受伤, 住院 …) and
    past / legal words (赔偿, 判决 …) near the danger words 0.734 against
    0.739 (1,142 letters); the critical cues split into five groups
    (violence, structure, fire, life, crowd) 0.737 against 0.734, and past
    titles dropped from the head counts 0.735: too small to add columns.

    Fourth round (2,763 labels, 1,962 tuning letters): question / request
    and complaint forms counted in the title (请问, 能否, 吗, 希望 …; 投诉,
    违规, 至今, 多次 …) as two more columns won on tuning CV (0.7405 against
    0.7313) but lost on the held-out part (0.731 against 0.743, both fitted
    on the tuning letters), so the columns stay as they are; head n-grams,
    C=32 / 128 and a calibrated linear SVM did not help (docs/classify.md).

    Session 7 (2,763 majority labels, 1,962 tuning letters): one more cue
    column, building / lift damage words (``cues.STRUCTURE_CUES``: 危房,
    裂缝, 震裂, 电梯, 坠落 …; ``structure=True``), 0.7243 -> 0.7387 on tuning
    CV (3 seeds, each better), held-out 0.7280 -> 0.7379; on the 7,563
    labels of rounds 5 and 6, 0.7432 -> 0.7471 (each seed better).  Counts of recency
    or dated / compensation words near a critical cue, of injury / minor
    violence words, and letter length did not help (0.720-0.724).
    """
    return Pipeline(
        [
            (
                "features",
                FeatureUnion(
                    [
                        ("text", text_features(min_df=2, max_df=0.5, max_features=50_000)),
                        (
                            "cues",
                            FunctionTransformer(
                                urgency_cue_counts,
                                kw_args={"head_chars": HEAD_CHARS, "structure": True},
                                accept_sparse=True,
                            ),
                        ),
                    ]
                ),
            ),
            ("clf", LogisticRegression(C=C, class_weight="balanced", max_iter=2000)),
        ]
    )


def build_rumour(C: float = 4.0) -> ForwardCalibratedClassifier:
    """Rumour: stack of a text model and a metadata model, combined by logistic regression.

    The text half (character TF-IDF, logistic regression) and the metadata
    half (log-scaled engagement, followers, verified, cue counts; gradient
    boosting, which captures interactions such as "unverified and few
    followers but many reposts") are fitted separately and stacked on
    out-of-fold probabilities.  On a time split (train <= 2012, test 2013-14)
    this beats one linear model over all features (ROC-AUC 0.92 vs 0.90).
    C=4 for the text half was chosen by grouped 5-fold CV on the 2010-2012
    training part only (ROC-AUC 0.966 against 0.964 for C=16 and C=1), and
    kept when re-checked by forward-chained CV inside 2010-2012 (AUC 0.921;
    C=1, C=16, min_df=5, 20k columns: 0.917-0.921).  The same forward CV
    (blocks of 2012-09..11 and 2012-11..12 scored by models fitted on the
    posts before them; the 2013-2014 test years not involved) chose the
    metadata half: shallow trees (100 of depth 3) over 200 unlimited ones
    (AUC 0.929 vs 0.921), and no likes (0.937; :data:`RUMOUR_META_USED`).
    Depth 2 or 4, 50 or 200 trees, 8 leaves, learning rate 0.1 were all
    within 0.937 +- 0.001 (without likes) or 0.928-0.931 (with): the cheapest
    was kept.

    The stack is wrapped in :class:`classify.forward.ForwardCalibratedClassifier`:
    fitted with ``times`` (``classify.training`` passes them), its
    probabilities are calibrated on forward-chained predictions within the
    training data, so that 0.5 is a decision threshold learnt under time
    drift instead of the balanced fit's own 0.5 (too high for later posts).
    """
    text = Pipeline(
        [
            (
                "features",
                ColumnTransformer([("text", text_features(min_df=2, max_df=0.5), "tokens")]),
            ),
            ("clf", LogisticRegression(C=C, class_weight="balanced", max_iter=2000)),
        ]
    )
    meta = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        (
                            "meta",
                            Pipeline(
                                [
                                    ("float", FunctionTransformer(to_float)),
                                    ("scale", LogCountScaler()),
                                ]
                            ),
                            list(RUMOUR_META_USED),
                        ),
                        (
                            "cues",
                            FunctionTransformer(rumour_cue_counts, accept_sparse=True),
                            "tokens",
                        ),
                    ],
                    sparse_threshold=0,
                ),
            ),
            (
                "clf",
                HistGradientBoostingClassifier(
                    max_iter=100,
                    max_depth=3,
                    learning_rate=0.05,
                    class_weight="balanced",
                    random_state=0,
                ),
            ),
        ]
    )
    stack = Pipeline(
        [
            (
                "stack",
                StackingClassifier(
                    [("text", text), ("meta", meta)],
                    final_estimator=LogisticRegression(class_weight="balanced"),
                    cv=5,
                ),
            )
        ]
    )
    return ForwardCalibratedClassifier(stack)


BUILDERS = {"topic": build_topic, "urgency": build_urgency, "rumour": build_rumour}
