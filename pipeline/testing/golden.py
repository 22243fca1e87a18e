"""Golden expectations: what a replay must produce, stored as JSON beside the test.

Scores, valence, arousal, dominance and intensity are compared with a tolerance
(onnxruntime's float sums can differ in the last bits between batch shapes); labels,
top emotion, Ekman group, sentiment, dead-letter codes and alerts (kind, severity,
subject, event time, and the top word of each explained text) must match exactly.
Set MOODPIPE_UPDATE_GOLDEN=1 to rewrite the files from the current results (then review
the diff before committing it).
"""

from __future__ import annotations

import json
import os
from datetime import UTC
from pathlib import Path
from typing import Any

from pipeline.emotions import LABELS
from pipeline.testing.harness import ReplayResult

CATEGORICAL = ("top_emotion", "labels", "ekman", "sentiment", "model_version")
AFFECT = ("valence", "arousal", "dominance", "intensity")


def golden_view(result: ReplayResult) -> dict[str, Any]:
    """The parts of a replay result that golden files pin down, keyed stably."""
    events = {}
    for e in result.events:
        events[f"{e['source']}:{e['event_id']}"] = {
            "top_emotion": e["top_emotion"],
            "labels": sorted(e["labels"]),
            "ekman": e["ekman"],
            "sentiment": e["sentiment"],
            "model_version": e["model_version"],
            "scores": {label: round(float(e[label]), 4) for label in LABELS},
            # None where the scoring model has no VAD head.
            "affect": {k: None if e.get(k) is None else round(float(e[k]), 4) for k in AFFECT},
        }
    letters = sorted(
        (
            {
                "topic": result.topic_roles.get(d["source_topic"], d["source_topic"]),
                "error": d["error"],
                "value_prefix": _prefix(d["value_b64"]),
            }
            for d in result.dead_letters
        ),
        key=lambda d: (d["topic"], d["error"], d["value_prefix"]),
    )
    alerts = sorted(
        (
            {
                "kind": a["kind"],
                "severity": a["severity"],
                "source": a["source"],
                "brand": a["brand"],
                "subject": a["subject"],
                "event_time": _iso(a["event_time"]),
                # The word that drove each alerted text's score most (pipeline/explain).
                "why": [
                    (t.get("top") or [{"word": ""}])[0]["word"]
                    for t in (a.get("explanation") or {}).get("texts", [])
                ],
            }
            for a in result.alerts
        ),
        key=lambda a: (a["event_time"], a["kind"], a["subject"]),
    )
    return {"events": dict(sorted(events.items())), "dead_letters": letters, "alerts": alerts}


def _iso(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _prefix(value_b64: str) -> str:
    import base64

    return base64.b64decode(value_b64)[:48].decode("utf-8", errors="replace")


def assert_matches_golden(
    result: ReplayResult, golden_path: Path, score_tolerance: float = 1e-3, max_lines: int = 25
) -> None:
    view = golden_view(result)
    if os.environ.get("MOODPIPE_UPDATE_GOLDEN") == "1" or not golden_path.exists():
        golden_path.parent.mkdir(parents=True, exist_ok=True)
        golden_path.write_text(json.dumps(view, indent=1, sort_keys=True) + "\n")
        if os.environ.get("MOODPIPE_UPDATE_GOLDEN") != "1":
            raise AssertionError(f"no golden file yet: wrote {golden_path}; review and commit it")
        return
    golden = json.loads(golden_path.read_text())
    problems: list[str] = []
    got_events, want_events = view["events"], golden["events"]
    for key in sorted(set(want_events) - set(got_events)):
        problems.append(f"{key}: expected a scored event, none landed")
    for key in sorted(set(got_events) - set(want_events)):
        problems.append(f"{key}: scored, but the golden file has no such event")
    for key in sorted(set(got_events) & set(want_events)):
        got, want = got_events[key], want_events[key]
        for name in CATEGORICAL:
            if got[name] != want[name]:
                problems.append(f"{key}: {name} is {got[name]!r}, golden {want[name]!r}")
        for label in LABELS:
            if abs(got["scores"][label] - want["scores"][label]) > score_tolerance:
                problems.append(
                    f"{key}: score {label} is {got['scores'][label]:.4f}, "
                    f"golden {want['scores'][label]:.4f}"
                )
        for name in AFFECT:
            a, b = got["affect"][name], want.get("affect", {}).get(name)
            if (a is None) != (b is None) or (a is not None and abs(a - b) > score_tolerance):
                problems.append(f"{key}: {name} is {a}, golden {b}")
    if view["dead_letters"] != golden["dead_letters"]:
        got_l = {json.dumps(d, sort_keys=True) for d in view["dead_letters"]}
        want_l = {json.dumps(d, sort_keys=True) for d in golden["dead_letters"]}
        problems += [f"dead letter missing: {d}" for d in sorted(want_l - got_l)]
        problems += [f"unexpected dead letter: {d}" for d in sorted(got_l - want_l)]
    got_a = [json.dumps(a, sort_keys=True) for a in view["alerts"]]
    want_a = [json.dumps(a, sort_keys=True) for a in golden.get("alerts", [])]
    if got_a != want_a:
        problems += [f"alert missing: {a}" for a in want_a if a not in got_a]
        problems += [f"unexpected alert: {a}" for a in got_a if a not in want_a]
        if set(got_a) == set(want_a):
            problems.append(f"alerts repeated: {len(got_a)} raised, golden {len(want_a)}")
    if problems:
        shown = problems[:max_lines]
        more = f"\n  ... and {len(problems) - max_lines} more" if len(problems) > max_lines else ""
        raise AssertionError(
            f"replay differs from {golden_path.name} in {len(problems)} places "
            "(MOODPIPE_UPDATE_GOLDEN=1 rewrites it if the change is intended):\n  "
            + "\n  ".join(shown)
            + more
        )
