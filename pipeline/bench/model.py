"""`moodpipe bench-model`: texts/s at batch 1, 8 and 64 for every way of running the model.

In-process onnxruntime vs tritonserver over HTTP and gRPC, fp32 vs int8, in one run
on this machine, and the multilingual model (`emotion_ml`, fp32) on the same texts.
Triton is restarted with `--model-config-name=int8` for the int8 rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from pipeline.inference.onnx_local import LocalEmotionModel
from pipeline.inference.triton_client import OUTPUTS, VAD
from pipeline.local.runtime import LocalRuntime
from pipeline.settings import Settings
from pipeline.traffic.generate import sample_texts

BATCHES = (1, 8, 64)


def _rate(fn: Any, texts: list[str], batch: int, seconds: float) -> float:
    fn(texts[:batch])  # warm-up
    done = 0
    started = time.perf_counter()
    i = 0
    while time.perf_counter() - started < seconds:
        chunk = texts[i : i + batch] or texts[:batch]
        fn(chunk)
        done += len(chunk)
        i = (i + batch) % len(texts)
    return done / (time.perf_counter() - started)


def _triton_fns(settings: Settings, model_name: str | None = None) -> dict[str, Any]:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    http = httpclient.InferenceServerClient(f"{settings.bind_host}:{settings.triton_http_port}")
    grpc = grpcclient.InferenceServerClient(settings.triton_url)

    def call(module: Any, client: Any) -> Any:
        def fn(texts: list[str]) -> np.ndarray:
            data = np.array([t.encode() for t in texts], dtype=np.object_).reshape(-1, 1)
            tensor = module.InferInput("TEXT", list(data.shape), "BYTES")
            tensor.set_data_from_numpy(data)
            result = client.infer(
                model_name or settings.model_name,
                [tensor],
                # All of them: asking Triton for a subset of an ensemble's outputs fails
                # ("unexpected deadlock") when a later step's outputs go unrequested.
                outputs=[module.InferRequestedOutput(name) for name in (*OUTPUTS, VAD)],
            )
            return result.as_numpy("PROBABILITIES")

        return fn

    return {"triton-http": call(httpclient, http), "triton-grpc": call(grpcclient, grpc)}


def _multilingual_rows(
    settings: Settings, texts: list[str], seconds: float
) -> list[dict[str, Any]]:
    name = settings.multilingual_model_name or "emotion_ml"
    fns = {"in-process": LocalEmotionModel(model_name=name).score,
           **_triton_fns(settings, name)}  # fmt: skip
    return [
        {
            "variant": f"{name} fp32",
            "path": path,
            "batch": batch,
            "texts_per_s": round(_rate(fn, texts, batch, seconds), 1),
        }
        for path, fn in fns.items()
        for batch in BATCHES
    ]


def run_model_bench(
    settings: Settings, seconds: float = 6.0, multilingual: bool = True
) -> list[dict[str, Any]]:
    texts = list(sample_texts()[:2000])
    rows: list[dict[str, Any]] = []
    runtime = LocalRuntime(settings)
    runtime.up(["triton"])
    for variant, onnx_file, config in (
        ("fp32", "model.onnx", ""),
        ("int8", "model_int8.onnx", "int8"),
    ):
        local = LocalEmotionModel(onnx_file=onnx_file)
        for batch in BATCHES:
            rows.append(
                {
                    "variant": variant,
                    "path": "in-process",
                    "batch": batch,
                    "texts_per_s": round(_rate(local.score, texts, batch, seconds), 1),
                }
            )
        runtime.stop("triton")
        runtime.settings = settings.model_copy(update={"triton_model_config": config})
        runtime.start("triton")
        for path, fn in _triton_fns(settings).items():
            for batch in BATCHES:
                rows.append(
                    {
                        "variant": variant,
                        "path": path,
                        "batch": batch,
                        "texts_per_s": round(_rate(fn, texts, batch, seconds), 1),
                    }
                )
        if variant == "fp32" and multilingual:
            rows += _multilingual_rows(settings, texts, seconds)
    runtime.stop("triton")
    runtime.settings = settings
    runtime.start("triton")
    return rows
