"""The emotion model's code paths: training, export, metrics, postprocessing, scoring.

Training and export run for a few steps on a tiny sample, so the code cannot rot;
the shipped model's quality is measured by `moodpipe eval` (docs/model-eval.json).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.emotions import LABELS
from pipeline.inference.onnx_local import LocalEmotionModel, load_postprocessor
from pipeline.model.metrics import macro_f1, per_label_f1, tune_thresholds
from pipeline.model.score import read_inputs, score_stream
from pipeline.resources import triton_models_dir
from pipeline.traffic.generate import sample_texts


def test_metrics_on_a_hand_checked_case() -> None:
    y = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    pred = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    # label 0: tp 1, fp 1, fn 1 -> 0.5; label 1: tp 2 -> 1.0
    assert per_label_f1(y, pred).tolist() == [0.5, 1.0]
    assert macro_f1(y, pred) == 0.75
    probs = np.array([[0.9, 0.1], [0.6, 0.7], [0.2, 0.8], [0.1, 0.2]])
    thresholds, f1 = tune_thresholds(y, probs)
    assert f1 == 1.0 and 0.2 < thresholds[0] <= 0.6 and 0.2 < thresholds[1] <= 0.7


def test_postprocessing_uses_per_label_thresholds_and_published_groups(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(triton_models_dir() / "emotion_postprocess", repo / "emotion_postprocess")
    taxonomy_path = repo / "emotion_postprocess" / "1" / "taxonomy.json"
    taxonomy = json.loads(taxonomy_path.read_text())
    taxonomy["thresholds"] = {label: 0.5 for label in LABELS} | {"anger": 0.2}
    taxonomy_path.write_text(json.dumps(taxonomy))
    post = load_postprocessor(repo)
    probs = np.zeros((3, 28), dtype=np.float32)
    probs[0, LABELS.index("anger")] = 0.3  # over anger's own 0.2
    probs[0, LABELS.index("joy")] = 0.45  # under 0.5
    probs[1, LABELS.index("grief")] = 0.9
    probs[2, LABELS.index("neutral")] = 0.6
    probs[2, LABELS.index("curiosity")] = 0.55
    assert post.labels_over_threshold(probs) == [["anger"], ["grief"], ["curiosity", "neutral"]]
    assert post.group(probs, "ekman") == ["joy", "sadness", "neutral"]
    assert post.group(probs, "sentiment") == ["positive", "negative", "neutral"]


def test_score_reads_lines_and_json_lines_with_clear_errors() -> None:
    items = list(read_inputs(["plain text\n", '{"id": 3, "text": "json", "lang": "de"}\n', "\n"]))
    assert items == [
        {"id": None, "text": "plain text", "lang": ""},
        {"id": 3, "text": "json", "lang": "de"},
    ]
    for bad in ("7", '"German"', '"zh_CN"'):  # the records' own BCP 47 rule
        with pytest.raises(ValueError, match='line 1: "lang" must be a language tag'):
            list(read_inputs(['{"text": "x", "lang": ' + bad + "}"]))
    with pytest.raises(ValueError, match='line 1: a JSON line needs a string "text"'):
        list(read_inputs(['{"body": "x"}']))
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        list(read_inputs(["ok", "{broken"]))


def test_local_scoring_writes_one_json_line_per_text() -> None:
    out = io.StringIO()
    texts = ["I love it, thank you so much!", "This is awful, the worst service ever."]
    assert score_stream(texts, out) == 2
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["text"] for d in docs] == texts
    assert [(d["lang"], d["model"], d["model_coverage"]) for d in docs] == [
        ("en", "emotion", "full")
    ] * 2
    assert docs[0]["top_emotion"] == "gratitude" and docs[0]["sentiment"] == "positive"
    assert docs[1]["sentiment"] == "negative"
    assert all(len(d["probabilities"]) == 28 and d["model_version"] for d in docs)


@pytest.mark.services
def test_scoring_through_triton_equals_scoring_in_process(runtime) -> None:
    texts = list(sample_texts()[:40])
    local, remote = io.StringIO(), io.StringIO()
    score_stream(texts, local, runtime.settings, batch=7)
    score_stream(texts, remote, runtime.settings, use_triton=True, batch=16)
    a = [json.loads(x) for x in local.getvalue().splitlines()]
    b = [json.loads(x) for x in remote.getvalue().splitlines()]
    assert len(a) == len(b) == 40
    for x, y in zip(a, b, strict=True):
        keys = ("labels", "ekman", "sentiment", "model", "model_version", "lang")
        assert [x[k] for k in keys] == [y[k] for k in keys]
        diff = max(abs(x["probabilities"][k] - y["probabilities"][k]) for k in LABELS)
        assert diff <= 2e-5
        # Valence, arousal, dominance: the same encoder pass, through Triton or not.
        for key in ("valence", "arousal", "dominance", "intensity"):
            assert x[key] is not None and abs(x[key] - y[key]) <= 1e-4, key


def test_score_routes_each_line_by_language_as_the_worker_does() -> None:
    """The issue's first try: a Chinese complaint through `moodpipe score` with no model
    named reaches the multilingual model, like in the worker; English stays on MiniLM."""
    lines = [
        "这家航空公司太糟糕了，我的行李丢了，客服也不回复！",
        "My bag is lost and nobody answers. Furious.",
        json.dumps({"text": "Das ist wirklich enttäuschend.", "lang": "de-AT"}),
        json.dumps({"text": "Wonderful crew, thank you!", "lang": "en"}),
    ]
    out = io.StringIO()
    assert score_stream(lines, out) == 4
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["lang"], d["model"], d["model_coverage"]) for d in docs] == [
        ("zh", "emotion_ml", "full"),
        ("en", "emotion", "full"),
        ("de", "emotion_ml", "full"),
        ("en", "emotion", "full"),
    ]
    # The multilingual model's own scores, not the English model's neutral.
    zh = LocalEmotionModel(model_name="emotion_ml").predict([lines[0]])
    assert docs[0]["labels"] == zh.labels[0]
    assert docs[0]["probabilities"]["neutral"] == pytest.approx(
        float(zh.probabilities[0, LABELS.index("neutral")]), abs=1e-5
    )
    assert any(label in docs[0]["labels"] for label in ("annoyance", "disappointment", "anger"))


def test_int8_variant_stays_close_to_fp32() -> None:
    # Measured on the shipped model over these 256 texts: mean |diff| 0.007, top
    # emotion agrees on 91%, Ekman group on 93%; test-set macro-F1 drops 0.010
    # (docs/model-eval.json). Single probabilities can move by 0.3.
    texts = list(sample_texts()[:256])
    fp32 = LocalEmotionModel().predict(texts)
    int8 = LocalEmotionModel(onnx_file="model_int8.onnx").predict(texts)
    assert np.abs(fp32.probabilities - int8.probabilities).mean() < 0.015
    assert (fp32.probabilities.argmax(1) == int8.probabilities.argmax(1)).mean() > 0.85
    assert np.mean([a == b for a, b in zip(fp32.ekman, int8.ekman, strict=True)]) > 0.85


torch = pytest.importorskip("torch", reason="the train extra is part of `make test`")


def _tiny_goemotions(folder: Path) -> Path:
    """train.tsv / dev.tsv in GoEmotions' format, from the sample texts the package ships."""
    import gzip

    import pipeline.traffic

    source = Path(pipeline.traffic.__file__).parent / "goemotions_test.tsv.gz"
    with gzip.open(source, "rt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][:96]
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in (("train.tsv", rows[:64]), ("dev.tsv", rows[64:])):
        lines = [f"{text}\t{labels}\tid{i}\n" for i, (text, labels) in enumerate(part)]
        (folder / name).write_text("".join(lines), encoding="utf-8")
    return folder


def _train(out: Path, texts: int, epochs: int, stop_after: int = 0) -> None:
    from pipeline.model.train import main

    data = _tiny_goemotions(out.parent / "data")
    main(
        [
            "--data-dir",
            str(data),
            "--out",
            str(out),
            "--limit",
            str(texts),
            "--dev-limit",
            "32",
            "--batch-size",
            "8",
            "--epochs",
            str(epochs),
            "--checkpoint-every",
            "1",
            "--max-length",
            "32",
            "--threads",
            "2",
            "--stop-after",
            str(stop_after),
        ]
    )


def test_training_is_seeded_and_resumes_where_it_stopped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _train(tmp_path / "a", 24, 2, stop_after=4)  # 4 of 6 steps (mid-epoch), then stop
    _train(tmp_path / "a", 24, 2)  # resumes for the last 2
    assert "resumed from" in (tmp_path / "a" / "train.log").read_text()
    _train(tmp_path / "b", 24, 2)  # 6 steps in one go
    a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)
    assert a["state"]["step"] == b["state"]["step"] == 6
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    summary = json.loads((tmp_path / "b" / "train_summary.json").read_text())
    assert len(summary["history"]) == 2
    thresholds = json.loads((tmp_path / "b" / "thresholds.json").read_text())
    assert set(thresholds) == set(LABELS)


def test_export_gives_onnx_equal_to_torch_with_dynamic_axes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import onnxruntime as ort

    from pipeline.model.encoder import encoder_dir
    from pipeline.model.export import export_classifier, parity
    from pipeline.model.train import build_model

    inner = build_model(encoder_dir())

    class WithSigmoid(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, ids, mask):
            return torch.sigmoid(self.inner(ids, mask))

    model = WithSigmoid().eval()
    fp32 = export_classifier(model, tmp_path)
    texts = list(sample_texts()[:24])
    assert parity(model, fp32, texts) < 1e-5
    assert parity(model, tmp_path / "model.onnx", texts) < 2e-3  # fp16-stored weights
    assert parity(model, tmp_path / "model_int8.onnx", texts) < 0.2
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    for batch, length in ((1, 5), (7, 40)):
        ids = np.ones((batch, length), dtype=np.int64)
        (probs,) = session.run(None, {"input_ids": ids, "attention_mask": ids})
        assert probs.shape == (batch, 28)
    assert (tmp_path / "model.onnx").stat().st_size < 0.6 * fp32.stat().st_size


def test_multilingual_head_training_resumes_exactly(tmp_path: Path) -> None:
    """Seeded head training stopped after 2 epochs and resumed equals 4 epochs straight."""
    import argparse

    import torch

    from pipeline.model.train_multilingual import Features, parser, train_head

    rng = np.random.default_rng(0)
    parts = [
        Features(rng.standard_normal((300, 384)).astype(np.float32),
                 (rng.random((300, 28)) < 0.1).astype(np.int8), "labels"),
        Features(rng.standard_normal((200, 384)).astype(np.float32),
                 (rng.random((200, 6)) < 0.3).astype(np.int8), "groups"),
    ]  # fmt: skip

    def args(**extra: object) -> argparse.Namespace:
        ns = parser().parse_args(["--epochs", "4", "--batch-size", "64"])
        for key, value in extra.items():
            setattr(ns, key, value)
        return ns

    straight = train_head(parts, args(), tmp_path / "a.pt")
    train_head(parts, args(stop_after=2), tmp_path / "b.pt")
    assert torch.load(tmp_path / "b.pt", weights_only=False)["epoch"] == 2
    resumed = train_head(parts, args(), tmp_path / "b.pt")
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_embedding_cache_resumes_at_the_first_missing_chunk(tmp_path: Path) -> None:
    from pipeline.model.multilingual import embed_cached

    calls: list[int] = []

    class CountingEncoder:
        def embed(self, texts: list[str]) -> np.ndarray:
            calls.append(len(texts))
            return np.full((len(texts), 384), float(len(calls)), dtype=np.float32)

    texts = [f"text {i}" for i in range(10)]
    first = embed_cached(CountingEncoder(), texts, tmp_path / "cache", chunk=4)  # type: ignore[arg-type]
    assert calls == [4, 4, 2] and first.shape == (10, 384)
    (tmp_path / "cache" / "00001.npy").unlink()  # as if killed while writing chunk 1
    again = embed_cached(CountingEncoder(), texts, tmp_path / "cache", chunk=4)  # type: ignore[arg-type]
    assert calls == [4, 4, 2, 4]
    assert np.array_equal(again[:4], first[:4]) and np.array_equal(again[8:], first[8:])
