"""Languages end to end: detection, routing to emotion_ml, coverage, on the real services."""

from __future__ import annotations

import asyncio
import io
import json

import numpy as np
import pytest

from pipeline.emotions import LABELS
from pipeline.inference.onnx_local import LocalEmotionModel
from pipeline.local.worker import stop_worker
from pipeline.model.score import score_stream
from pipeline.traffic import multilingual_language, produce, sample_multilingual_posts, sample_posts
from tests.conftest import spawn_worker
from tests.helpers import Namespace, wait_until

pytestmark = pytest.mark.services

COLUMNS = (
    "event_id, text, lang, lang_declared, lang_detected, model_coverage, model_name, "
    "valence, arousal, dominance, "
)


def _stored(namespace: Namespace) -> dict[str, dict]:
    rows = namespace.query_dicts(
        f"SELECT {COLUMNS} {', '.join(LABELS)} FROM scored_events FINAL ORDER BY event_id"
    )
    return {r["event_id"]: r for r in rows}


def test_languages_are_detected_routed_and_scored_by_the_multilingual_model(
    namespace: Namespace,
) -> None:
    s = namespace.settings
    foreign = sample_multilingual_posts(60, run_id="ml", seed=21, declared_share=0.5)
    english = sample_posts(20, run_id="ml", seed=22)
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, foreign + english))
    worker = spawn_worker(namespace)
    wait_until(lambda: namespace.landed() >= 80, 240, "all posts in ClickHouse")
    assert worker.poll() is None, "worker died"
    stop_worker(worker)

    stored = _stored(namespace)
    assert len(stored) == 80
    sent = {r.event_id: json.loads(r.value) for r in foreign + english}
    ml_ids, en_ids = [], []
    for event_id, row in stored.items():
        text, lang, declared = row["text"], row["lang"], row["lang_declared"]
        detected, coverage, model_name = (
            row["lang_detected"],
            row["model_coverage"],
            row["model_name"],
        )
        doc = sent[event_id]
        assert declared == doc.get("lang", "")
        if declared:
            assert detected == "" and lang == declared  # detection runs only when absent
        else:
            assert detected == lang != ""
        written = multilingual_language(text)
        if written is None:  # an English sample post (lang "en")
            assert (lang, coverage, model_name) == ("en", "full", "emotion")
            en_ids.append(event_id)
            continue
        if declared:
            assert lang == written
        elif written != "uk":  # the detector takes some Ukrainian for Russian
            assert lang == written, (text, lang)
        partial = ("hi", "uk", "ja", "fr", "it")  # transfer only: no in-language training
        expected_coverage = "none" if lang in ("sw", "am") else (
            "partial" if lang in partial else "full"
        )  # fmt: skip
        assert coverage == expected_coverage, (text, lang, coverage)
        assert model_name == "emotion_ml"
        ml_ids.append(event_id)
    assert ml_ids and en_ids

    # Scores are the multilingual model's, computed in-process on the same texts.
    for ids, name in ((ml_ids, "emotion_ml"), (en_ids, "emotion")):
        got = np.array([[stored[i][label] for label in LABELS] for i in ids], dtype=np.float32)
        expected = LocalEmotionModel(model_name=name).predict([stored[i]["text"] for i in ids])
        assert np.abs(got - expected.probabilities).max() < 1e-4, name
        # VAD from Triton's ensembles equals the in-process graphs' (the issue's 1e-4).
        vad = np.array([[stored[i][d] for d in ("valence", "arousal", "dominance")]
                        for i in ids], dtype=np.float32)  # fmt: skip
        assert expected.vad is not None and np.abs(vad - expected.vad).max() < 1e-4, name

    # `moodpipe score`, in-process and through Triton, routes every text as the worker
    # did: same language, same model, same coverage (one routing rule), same scores.
    lines = [json.dumps({"id": i, "text": sent[i]["text"], **({"lang": sent[i]["lang"]}
             if "lang" in sent[i] else {})}, ensure_ascii=False) for i in stored]  # fmt: skip
    for use_triton in (False, True):
        out = io.StringIO()
        assert score_stream(lines, out, s, use_triton=use_triton, batch=16) == len(stored)
        for doc in map(json.loads, out.getvalue().splitlines()):
            row = stored[doc["id"]]
            assert (doc["lang"], doc["model"], doc["model_coverage"]) == (
                row["lang"], row["model_name"], row["model_coverage"]
            ), (use_triton, doc["text"])  # fmt: skip
            worst = max(abs(doc["probabilities"][k] - row[k]) for k in LABELS)
            assert worst < 1e-4, (use_triton, doc["text"])

    # Uncovered languages are stored but left out of the mood rollup; language_minute
    # counts every event.
    covered = sum(1 for r in stored.values() if r["model_coverage"] != "none")
    assert covered < len(stored)
    assert namespace.scalar("SELECT sum(events) FROM mood_minute") == covered
    assert namespace.scalar("SELECT sum(events) FROM language_minute") == len(stored)
    assert namespace.scalar("SELECT sum(detected) FROM language_minute") == sum(
        1 for r in stored.values() if r["lang_declared"] == ""
    )


def test_without_the_multilingual_model_other_languages_are_marked_not_covered(
    namespace: Namespace,
) -> None:
    """A Triton without emotion_ml is a deployment choice: the English model scores
    everything and other languages are stored with model_coverage 'none'."""
    s = namespace.settings
    posts = sample_multilingual_posts(15, run_id="noml", seed=23, declared_share=1.0)
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts))
    namespace.env["MOODPIPE_MULTILINGUAL_MODEL_NAME"] = "no_such_model"
    worker = spawn_worker(namespace)
    wait_until(lambda: namespace.landed() >= 15, 180, "all posts in ClickHouse")
    stop_worker(worker)
    for row in _stored(namespace).values():
        lang, coverage, model_name = row["lang"], row["model_coverage"], row["model_name"]
        assert model_name == "emotion"
        assert coverage == ("full" if lang == "en" else "none")
    assert namespace.scalar("SELECT sum(events) FROM mood_minute") is None or (
        namespace.scalar("SELECT sum(events) FROM mood_minute") == 0
    )
