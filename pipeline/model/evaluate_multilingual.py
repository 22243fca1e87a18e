"""`moodpipe eval --multilingual`: both models per language, and the routed system.

- GoEmotions test (28 labels / Ekman / sentiment) for `emotion` and `emotion_ml`
  (pipeline/model/evaluate.py).
- BRIGHTER dev, when `../shared/data/brighter-dev/` is present: macro-F1 over each
  language's emotions (anger, disgust, fear, joy, sadness, surprise; English has no
  disgust), predicted from the 28 probabilities through the Ekman groups (a group's
  probability is its strongest member's). One threshold per group, tuned on English
  dev data only (GoEmotions dev + XED's held-out English lines), never on BRIGHTER.
- "routed": what the pipeline does, each language scored by the model
  `pipeline/language.py` routes it to (English -> `emotion`, others -> `emotion_ml`).
- Language identification accuracy per BRIGHTER language (py3langid, restricted to
  the configured set), since undeclared posts are routed by it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.inference.onnx_local import LocalEmotionModel
from pipeline.model.corpora import (
    BRIGHTER_LANGUAGES,
    BRIGHTER_TARGET_CODES,
    read_brighter,
    read_xed,
    shared_data_dir,
)
from pipeline.model.data import read_split
from pipeline.model.evaluate import evaluate, score_split
from pipeline.model.metrics import macro_f1, tune_thresholds
from pipeline.model.train_multilingual import SIX_MEMBERS, group_probs

REPORTED = (*BRIGHTER_TARGET_CODES, "chn", "eng")
# The section eval rewrites, always the card's last; everything above it is kept.
MODEL_CARD_MARKER = "## Multilingual evaluation (written by `moodpipe eval --multilingual`)"


def _score(model: LocalEmotionModel, texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), 28), dtype=np.float32)
    for start in range(0, len(texts), 64):
        out[start : start + 64] = model.score(texts[start : start + 64])
    return out


def group_thresholds(model: LocalEmotionModel, data_dir: Path) -> np.ndarray:
    dev = read_split(data_dir / "goemotions" / "dev.tsv")
    xed = read_xed(data_dir / "xed" / "en-annotated.tsv", "en")
    held = [i for i in range(len(xed.texts)) if i % 10 == 0]  # as in training
    probs = np.concatenate(
        [
            group_probs(score_split(model, dev)),
            group_probs(_score(model, [xed.texts[i] for i in held])),
        ]
    )
    gold = np.concatenate(
        [np.stack([dev.labels[:, m].max(axis=1) for m in SIX_MEMBERS], 1), xed.labels[held]]
    )
    thresholds, _ = tune_thresholds(gold, probs)
    return thresholds


def evaluate_languages(
    models: dict[str, LocalEmotionModel],
    data_dir: Path | None = None,
    codes: tuple[str, ...] = REPORTED,
) -> dict[str, Any]:
    """`codes`: the BRIGHTER files to score (default: the issue's target languages,
    Chinese and English; `()` for all 28)."""
    import asyncio

    from pipeline.scoring.routing import local_router, probabilities
    from pipeline.settings import Settings

    data_dir = data_dir or shared_data_dir()
    result: dict[str, Any] = {
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "goemotions": {
            name: evaluate(m, data_dir / "goemotions", name) for name, m in models.items()
        },
        "brighter": {},
    }
    brighter_dir = data_dir / "brighter-dev"
    if not brighter_dir.is_dir():
        return result
    # The routed figures go through the same router as `moodpipe score` and the worker.
    router = local_router(Settings())
    thresholds = {name: group_thresholds(m, data_dir) for name, m in models.items()}
    per_language: dict[str, Any] = {}
    for path in sorted(brighter_dir.glob("*.csv")):
        if codes and path.stem not in codes:
            continue
        data = read_brighter(path)
        cols = np.flatnonzero(data.known)
        scores = {}
        for name, model in models.items():
            pred = group_probs(_score(model, data.texts)) >= thresholds[name]
            scores[name] = round(macro_f1(data.labels[:, cols], pred[:, cols]), 4)
        lang = BRIGHTER_LANGUAGES.get(path.stem, path.stem)
        routed: dict[str, Any] = {}
        # Declared: a JSON line with "lang"; detected: plain text, as most posts arrive.
        for how, declared in (("declared", [lang] * len(data.texts)), ("detected", None)):
            parts = asyncio.run(router.score(data.texts, declared))
            probs = probabilities(parts, len(data.texts))
            names = np.empty(len(data.texts), dtype=object)
            for part in parts:
                names[part.indices] = part.model.name
            # Each text is judged with the thresholds of the model that scored it.
            limits = np.stack([thresholds[str(n)] for n in names])
            pred = group_probs(probs) >= limits
            routed[how] = round(macro_f1(data.labels[:, cols], pred[:, cols]), 4)
            routed[f"{how}_models"] = sorted({str(n) for n in names})
        detected = [router.resolve("", t).lang for t in data.texts]
        per_language[path.stem] = {
            "lang": lang,
            "texts": len(data.texts),
            "macro_f1": scores,
            "routed_model": routed["declared_models"][0],
            "routed": routed["declared"],
            "routed_detected": routed["detected"],
            "coverage": router.resolve(lang, "").coverage,
            "lang_id_accuracy": round(float(np.mean([d == lang for d in detected])), 3),
        }
    result["brighter"] = per_language
    targets = [per_language[c]["routed"] for c in BRIGHTER_TARGET_CODES if c in per_language]
    detected_targets = [per_language[c]["routed_detected"] for c in BRIGHTER_TARGET_CODES
                        if c in per_language]  # fmt: skip
    result["brighter_summary"] = {
        "chn_routed": per_language.get("chn", {}).get("routed"),
        "chn_routed_detected": per_language.get("chn", {}).get("routed_detected"),
        "target_mean_routed_detected": (
            round(float(np.mean(detected_targets)), 4) if detected_targets else None
        ),
        "eng_routed": per_language.get("eng", {}).get("routed"),
        "target_mean_routed": round(float(np.mean(targets)), 4) if targets else None,
        "target_languages": list(BRIGHTER_TARGET_CODES),
        "group_thresholds": {n: [round(float(x), 3) for x in t] for n, t in thresholds.items()},
    }
    return result


def model_card_section(result: dict[str, Any]) -> str:
    ge = result["goemotions"]
    lines = [
        MODEL_CARD_MARKER,
        "",
        f"Evaluated {result['evaluated_at']}, in-process, through the same router as",
        "`moodpipe score` and the worker (pipeline/scoring/routing.py).",
        "",
        "| model | GoEmotions 28 | Ekman | sentiment |",
        "|---|---|---|---|",
    ]
    for name, r in ge.items():
        m = r["macro_f1"]
        lines.append(f"| {name} | {m['labels_28']:.3f} | {m['ekman']:.3f} | {m['sentiment']:.3f} |")
    if result.get("brighter"):
        lines += [
            "",
            "BRIGHTER dev (SemEval-2025 Task 11 track A; CC BY 4.0, evaluation only), macro-F1",
            "over each language's emotions:",
            "",
            "| language | texts | emotion | emotion_ml | routed (lang declared) | routed (lang "
            "detected) | coverage | language ID |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for code in REPORTED:
            r = result["brighter"].get(code)
            if r:
                f1 = r["macro_f1"]
                lines.append(
                    f"| {code} ({r['lang']}) | {r['texts']} | {f1.get('emotion', 0):.3f} | "
                    f"{f1.get('emotion_ml', 0):.3f} | {r['routed']:.3f} | "
                    f"{r['routed_detected']:.3f} | {r['coverage']} | {r['lang_id_accuracy']:.0%} |"
                )
        summary = result["brighter_summary"]
        lines += [
            "",
            f"Mean over {', '.join(summary['target_languages'])} (routed): "
            f"{summary['target_mean_routed']:.3f} with the language declared, "
            f"{summary['target_mean_routed_detected']:.3f} detected.",
        ]
    return "\n".join(lines) + "\n"


def evaluate_and_record(card: Path, json_out: Path, all_languages: bool) -> dict[str, Any]:
    """`moodpipe eval --multilingual`: both models, in-process; writes the JSON figures
    and replaces the multilingual section of the model card."""
    import json

    models = {name: LocalEmotionModel(model_name=name) for name in ("emotion", "emotion_ml")}
    result = evaluate_languages(models, codes=() if all_languages else REPORTED)
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result, indent=1) + "\n")
    text = card.read_text() if card.exists() else ""
    text = text.split(MODEL_CARD_MARKER)[0].rstrip() + "\n\n" + model_card_section(result)
    card.write_text(text)
    return result
