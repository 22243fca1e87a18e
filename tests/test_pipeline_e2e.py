"""End to end on the real broker, tritonserver and ClickHouse engine."""

from __future__ import annotations

import asyncio
import base64
import json

import jsonschema
import numpy as np
import pytest

from pipeline.emotions import LABELS
from pipeline.inference.onnx_local import LocalEmotionModel
from pipeline.local.worker import stop_worker
from pipeline.resources import schemas_dir
from pipeline.traffic import bad_records, produce, sample_posts, sample_tickets
from tests.conftest import spawn_worker
from tests.helpers import Namespace, wait_until

pytestmark = pytest.mark.services


def test_every_event_lands_once_with_model_scores_and_bad_records_are_dead_lettered(
    namespace: Namespace,
) -> None:
    s = namespace.settings
    posts = sample_posts(120, run_id="e2e", seed=11)
    tickets = sample_tickets(60, run_id="e2e", seed=12)
    bad = bad_records("post", run_id="e2e") + bad_records("ticket", run_id="e2e")
    bad_posts = [r for r in bad if b"-bad-post" in r.key]
    bad_tickets = [r for r in bad if b"-bad-ticket" in r.key]

    async def produce_all() -> None:
        await produce(s.kafka_bootstrap, s.posts_topic, posts[:60] + bad_posts + posts[60:])
        await produce(s.kafka_bootstrap, s.tickets_topic, bad_tickets + tickets)

    asyncio.run(produce_all())
    worker = spawn_worker(namespace)
    good = posts + tickets
    wait_until(lambda: namespace.landed() >= len(good), 240, "all good events in ClickHouse")
    wait_until(lambda: len(namespace.dead_letters()) >= len(bad), 60, "all dead letters")
    assert worker.poll() is None, "worker died"
    stop_worker(worker)

    # Exactly once: no duplicates even before merges, and nothing unexpected.
    rows = namespace.query_dicts(
        "SELECT event_id, source, text, "
        + ", ".join(LABELS)
        + ", top_emotion, labels, ekman, sentiment, model_name, model_version, "
        "source_topic, source_partition, source_offset FROM scored_events ORDER BY event_id"
    )
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids)) == len(good)
    assert set(ids) == {r.event_id for r in good}

    # Scores equal scoring the same texts directly through the same model.
    model = LocalEmotionModel()
    by_id = {r.event_id: json.loads(r.value) for r in good}
    texts = []
    for event_id in ids:
        doc = by_id[event_id]
        texts.append(doc["text"] if "text" in doc else f"{doc['subject']}\n{doc['body']}"
                     if doc["subject"] else doc["body"])  # fmt: skip
    expected = model.predict(texts)
    got = np.array([[r[label] for label in LABELS] for r in rows], dtype=np.float32)
    assert np.abs(got - expected.probabilities).max() < 1e-4
    for i, row in enumerate(rows):
        probs = expected.probabilities[i]
        assert row["top_emotion"] == LABELS[int(np.argmax(probs))]
        # Labels, Ekman and sentiment come from Triton's postprocessing step; the same
        # code in-process must agree (except where a score sits within float noise of
        # its threshold).
        near = {LABELS[j] for j in np.flatnonzero(np.abs(probs - model.post.thresholds) < 1e-4)}
        assert set(row["labels"]) ^ set(expected.labels[i]) <= near
        assert (row["ekman"], row["sentiment"]) == (expected.ekman[i], expected.sentiment[i])
        assert (row["model_name"], row["model_version"]) == ("emotion", model.info.version)
        assert row["source_topic"] in (s.posts_topic, s.tickets_topic)

    # Each bad record is on the dead-letter topic, byte for byte, with its reason.
    letters = namespace.dead_letters()
    assert len(letters) == len(bad)
    schema = json.loads((schemas_dir() / "dead_letter.schema.json").read_text())
    for letter in letters:
        jsonschema.validate({k: v for k, v in letter.items() if k != "_headers"}, schema)

    by_value = {base64.b64decode(d["value_b64"]): d for d in letters}
    for record in bad:
        letter = by_value[record.value]
        assert letter["error"] == record.expect, letter
        assert letter["reason"]
        assert letter["_headers"]["moodpipe.error"] == record.expect
        assert base64.b64decode(letter["key_b64"]) == record.key
        expected_topic = s.posts_topic if record in bad_posts else s.tickets_topic
        assert letter["source_topic"] == expected_topic


@pytest.mark.parametrize("batch_size", [1, 128, 4096])
def test_every_batch_size_the_settings_allow_lands_with_the_longest_ids(
    namespace: Namespace, batch_size: int
) -> None:
    """The already-stored lookup of a full batch of 128-character ids sends over 4 KiB
    of query parameters, which clickhouse-connect sends as a multipart form."""
    s = namespace.settings
    count = {1: 40, 128: 300, 4096: 4096}[batch_size]
    posts = []
    for record in sample_posts(count, run_id="ids", seed=batch_size):
        doc = json.loads(record.value)
        doc["id"] = (doc["id"] + "-" + "x" * 128)[:128]
        posts.append(type(record)(record.key, json.dumps(doc).encode(), "scored", doc["id"]))
    asyncio.run(produce(s.kafka_bootstrap, s.posts_topic, posts))
    namespace.env.update({
        "MOODPIPE_BATCH_SIZE": str(batch_size),
        "MOODPIPE_BATCH_TIMEOUT": "2",
        "MOODPIPE_MODEL_NAME": "emotion_null",  # the lookup and insert are the subject here
        "MOODPIPE_ALERTS_ENABLED": "false",
    })  # fmt: skip
    worker = spawn_worker(namespace)
    wait_until(lambda: namespace.landed() >= len(posts), 240, f"batches of {batch_size} landing")
    namespace.wait_caught_up(60)
    assert worker.poll() is None
    stop_worker(worker)
    ids = [r[0] for r in namespace.query("SELECT event_id FROM scored_events_dedup")]
    assert sorted(ids) == sorted(p.event_id for p in posts)
    assert namespace.dead_letters() == []
    # Whole batches went through: isolation would also get them in, in smaller parts.
    log = (namespace.log_dir / "worker-0.log").read_text()
    assert "lookup failed" not in log and "isolating" not in log
