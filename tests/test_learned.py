"""The learned layer: features, artifacts, the tiers it can reach, and the checker that keeps the
models in step with their training texts."""

from __future__ import annotations

import math
import shutil
from array import array
from pathlib import Path

import pytest

from bot import learned, risk
from bot.skills import DEFAULT_LIBRARY_PATH, check_library


def test_features_are_character_ngrams_words_bigrams_and_emoji() -> None:
    counts = learned.features("Cant SLEEP 😞")
    assert counts["w:cant"] == 1 and counts["w:sleep"] == 1 and counts["b:cant sleep"] == 1
    assert counts[" ca"] == 1 and counts["eep "] == 1 and counts["e:\U0001f61e"] == 1
    assert learned.features("") == {}


def _tiny(path: Path, classes: list[str], weights: list[float], intercepts: list[float]) -> learned.LinearModel:
    vocabulary = ["w:alone", "w:happy"]
    learned.write_model(path, {"classes": classes, "threshold": 0.6, "training_sha256": "x"}, vocabulary,
                        [1.0, 2.0], weights, intercepts)
    return learned.read_model(path)


def test_a_binary_artifact_reads_back_and_scores_by_the_logistic_function(tmp_path: Path) -> None:
    model = _tiny(tmp_path / "m.json.gz", ["none", "risk"], [3.0, -1.0], [-0.5])
    assert model.threshold == 0.6 and model.training_sha256 == "x"
    # "alone": one feature, tf-idf 1*1.0, L2-normalised to 1.0 -> logit 3.0 - 0.5
    assert model.predict("alone").of("risk") == pytest.approx(1 / (1 + math.exp(-2.5)))
    # both words: (1.0, 2.0) / sqrt(5) -> logit (3 - 2) / sqrt(5) - 0.5
    assert model.predict("alone happy").of("risk") == pytest.approx(1 / (1 + math.exp(-(1 / math.sqrt(5) - 0.5))))
    unknown = model.predict("zzz")  # no known feature: the intercept alone
    assert unknown.of("risk") == pytest.approx(1 / (1 + math.exp(0.5)))
    assert model.predict("alone", explain=3).cues == ("alone",)


def test_a_multiclass_artifact_gives_a_softmax_best_first(tmp_path: Path) -> None:
    # rows per feature: (anger, lonely, none)
    model = _tiny(tmp_path / "s.json.gz", ["anger", "lonely", "none"], [0.0, 4.0, 0.0, 0.0, 0.0, 3.0],
                  [0.0, 0.0, 0.0])
    prediction = model.predict("alone")
    assert prediction.label == "lonely"
    assert prediction.probability == pytest.approx(math.exp(4) / (math.exp(4) + 2))
    assert sum(p for _, p in prediction.probabilities) == pytest.approx(1.0)


def test_an_artifact_that_does_not_line_up_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.json.gz"
    learned.write_model(path, {"classes": ["none", "risk"]}, ["w:a", "w:b"], [1.0], array("d", [1.0, 2.0]), [0.0])
    with pytest.raises(ValueError, match="line up"):
        learned.read_model(path)


def test_the_shipped_models_are_in_step_with_their_training_texts() -> None:
    assert [p for p in check_library(DEFAULT_LIBRARY_PATH) if p.file.startswith(("models/", "training/"))] == []


@pytest.fixture
def library_copy(tmp_path: Path) -> Path:
    root = tmp_path / "lib"
    shutil.copytree(DEFAULT_LIBRARY_PATH, root)
    return root


def test_editing_training_texts_without_retraining_fails_the_check(library_copy: Path) -> None:
    with (library_copy / "training" / "states.tsv").open("a", encoding="utf-8") as handle:
        handle.write("s999\tnone\tsee you at group\n")
    (library_copy / "training" / "extra.tsv").write_text("family\ttier\ttext\n", encoding="utf-8")
    found = {(p.file, p.field) for p in check_library(library_copy) if p.severity == "error"}
    assert ("models/states.json.gz", "training_sha256") in found
    assert ("models/risk.json.gz", "training_sha256") in found  # states.tsv is a risk negative too
    assert ("training/extra.tsv", "") in found


def test_broken_context_tables_are_all_reported_at_once(library_copy: Path) -> None:
    path = library_copy / "rules" / "context.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("  - name: do_it\n", "  - name: its_done\n", 1)  # a duplicate name
    text = text.replace("past: '\\b(?:", "past: '\\b((?:", 1)  # an unbalanced group
    text = text.replace("  threshold: 0.85", "  threshold: 2", 1)
    path.write_text(text, encoding="utf-8")
    fields = {p.field for p in check_library(library_copy) if p.file == "rules/context.yaml"}
    assert {"vague[1].name", "past", "model_gate"} <= fields


def test_the_model_gate_and_the_state_model_name_only_distress_states(library_copy: Path) -> None:
    path = library_copy / "rules" / "context.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("states: [craving,", "states: [cravings,", 1),
                    encoding="utf-8")
    model = learned.read_model(library_copy / "models" / "states.json.gz")
    learned.write_model(library_copy / "models" / "states.json.gz",
                        {**model.meta, "classes": [*model.classes[:-1], "boredom"]}, model._vocabulary, model._idf,
                        model._weights, model._intercepts)
    problems = {(p.file, p.field): p.message for p in check_library(library_copy) if p.severity == "error"}
    assert "cravings" in problems[("rules/context.yaml", "model_gate.states")]
    assert "boredom" in problems[("models/states.json.gz", "classes")]


@pytest.mark.parametrize(("text", "tier"), [
    ("i want to kill myself", risk.CRISIS),
    ("i wish i could go to sleep and not wake up", risk.CHECK),
    ("two years ago i wanted to die, doing so much better now", risk.NONE),
    ("celebrating a year since my overdose", risk.NONE),
    ("2 years clean but tonight i want to die", risk.CRISIS),
    ("walked 5 kms today", risk.NONE),
    ("lol when i said im ending it i meant my phone plan", risk.NONE),
    ("lol when i said ending it tonight i meant it", risk.CRISIS),
    ("coach made the whole team run suicides at basketball practice", risk.NONE),
    ("my coworker stabbed me in the back on the project", risk.NONE),
    ("total chocolate overdose after the party", risk.NONE),
    ("i used to cut in high school", risk.CHECK),
    ("what time is group", risk.NONE),
])
def test_tiers_of_single_texts(text: str, tier: str) -> None:
    assert risk.assess(text).tier == tier


def test_the_learned_layer_raises_a_question_where_no_rule_fires_but_never_a_crisis() -> None:
    text = "told my sister to take care of my cat if anything happens"
    assert risk.assess(text, model=False).tier == risk.NONE
    assessment = risk.assess(text)
    assert assessment.tier == risk.CHECK and assessment.reasons[-1].startswith("model:")


def test_a_clear_everyday_state_asks_more_of_the_learned_layer() -> None:
    text = "really want a drink tonight"
    assert risk.assess(text, state="craving").tier == risk.NONE
    assert risk.assess(text, state="craving").model_probability == risk.assess(text).model_probability


@pytest.mark.parametrize(("reply", "answer"), [
    ("yes", "yes"), ("Yeah...", "yes"), ("kinda", "yes"), ("idk maybe", "yes"), ("no but sometimes", "yes"),
    ("no", "no"), ("Nope.", "no"), ("not really", "no"), ("im safe", "no"), ("no im ok", "no"),
    ("why do you ask", None), ("what time is group", None), ("", None),
])
def test_answers_to_the_direct_question(reply: str, answer: str | None) -> None:
    assert risk.answer(reply) == answer


def test_vague_wording_is_only_escalated_by_context() -> None:
    alone = risk.assess("gonna do it tonight")
    assert alone.vague and alone.tier != risk.CRISIS
    assert risk.escalate(alone).tier == risk.CRISIS
    plain = risk.assess("what time is group")
    assert risk.escalate(plain).tier == risk.NONE


def test_long_texts_are_clipped_before_the_encoder_so_nobody_can_stall_a_worker() -> None:
    learned.embed(["warm up"])
    encoder = learned._encoder
    for text in ("\u044f\U0001f600" * 800, "i feel so " + "really " * 400 + "sad", "x" * 5000):
        clipped = learned._clip(encoder, text)
        assert 0 < encoder.token_count(clipped, is_query=True) <= learned.MAX_TOKENS
        assert text.startswith(clipped)
    short = "my chest is tight and i cant stop shaking"
    assert learned._clip(encoder, short) == short  # what the models were trained on is untouched

