"""Classifier settings (topic, urgency, rumour)."""

from govpulse.settings import Setting

SETTINGS = [
    Setting(
        "classify.model_dir",
        "",
        "Folder of trained models (<task>.skops + <task>.card.json); tasks missing there "
        "use the models shipped in the package. Empty: shipped models only.",
    ),
    Setting(
        "classify.topic_unsure_below",
        0.5,
        "topic_score below this marks the topic as a guess (shown as unsure).",
        type="float",
    ),
    Setting(
        "classify.topic_floor",
        0.2,
        "topic_score below this leaves the topic empty (None).",
        type="float",
    ),
    Setting(
        "classify.urgency_rule_min_p",
        0.0,
        "A critical cue in the title/first sentence lifts urgency to 特急 when the model "
        "gives 特急 at least this probability (0: the cue alone decides).",
        type="float",
    ),
    Setting(
        "classify.batch_size",
        500,
        "Messages tagged per batch by `govpulse classify` and `govpulse reclassify`.",
        type="int",
    ),
]
