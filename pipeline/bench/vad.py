"""What the VAD head costs: the served classifier with and without it, same run.

Each round scores the same texts through both graphs, in-process, alternating which
goes first; the head's cost is the ratio of the two rates. The "without" graph is
the served file with the `vad` output and its nodes removed in memory, so nothing
else differs. (The pipeline's ceiling with the null model is `moodpipe bench
--null-model`; this isolates the one thing #19 adds to every encoder pass.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def without_vad(model_path: Path) -> bytes:
    import onnx

    model = onnx.load(str(model_path))
    graph = model.graph
    keep = [o for o in graph.output if o.name != "vad"]
    del graph.output[:]
    graph.output.extend(keep)
    nodes = [n for n in graph.node if not n.output[0].startswith("/moodpipe/vad/")
             and n.output[0] != "vad"]  # fmt: skip
    del graph.node[:]
    graph.node.extend(nodes)
    inits = [i for i in graph.initializer if not i.name.startswith("moodpipe.vad.")]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    return bytes(model.SerializeToString())


def _session(source: bytes | str) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_vad_overhead(texts: list[str], rounds: int = 3, batch: int = 64) -> dict[str, Any]:
    from pipeline.inference.onnx_local import LocalEmotionModel, padded
    from pipeline.resources import triton_models_dir

    model = LocalEmotionModel()  # for the served English model's tokenizer
    path = triton_models_dir() / "emotion_classifier" / "1" / "model.onnx"
    sessions = {"with_vad": _session(str(path)), "without_vad": _session(without_vad(path))}
    encodings = model.tokenizer.encode_batch(texts)
    chunks = [padded(encodings[i : i + batch]) for i in range(0, len(texts), batch)]
    rates: dict[str, list[float]] = {name: [] for name in sessions}
    for r in range(rounds):
        order = list(sessions) if r % 2 == 0 else list(reversed(sessions))
        for name in order:
            session = sessions[name]
            outputs = [o.name for o in session.get_outputs()]
            started = time.perf_counter()
            for feed in chunks:
                session.run(outputs, feed)
            rates[name].append(len(texts) / (time.perf_counter() - started))
    best = {name: max(v) for name, v in rates.items()}
    return {
        "texts": len(texts),
        "batch": batch,
        "rounds": rounds,
        "texts_per_s": {name: [round(x, 1) for x in v] for name, v in rates.items()},
        "ratio_with_to_without": round(best["with_vad"] / best["without_vad"], 4),
    }
