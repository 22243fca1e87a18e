"""Async gRPC client for the `emotion` ensemble on Triton, with retries."""

from __future__ import annotations

import contextlib
import functools
import logging

import numpy as np
import tritonclient.grpc.aio as grpcclient
from tritonclient.utils import InferenceServerException

from pipeline.connections.triton import TritonTLS
from pipeline.emotions import LABELS
from pipeline.inference.model_info import ModelInfo, Predictions
from pipeline.resilience.retry import retry
from pipeline.settings import Settings

log = logging.getLogger("moodpipe.inference")

INPUT = "TEXT"
OUTPUTS = ("PROBABILITIES", "LABELS", "EKMAN", "SENTIMENT")
# Valence, arousal, dominance: an output of models with a VAD head. Requested only from
# models that declare it: asking an ensemble for an output it lacks fails the call.
VAD = "VAD"
PROBE_TEXT = "Thanks, that works for me."


class TritonEmotionClient:
    @classmethod
    def from_settings(cls, settings: Settings, model_name: str) -> TritonEmotionClient:
        return cls(
            settings.triton_url,
            model_name,
            tls=settings.triton_tls_options,
            timeout=settings.triton_timeout,
            initial_backoff=settings.retry_initial_backoff,
            max_backoff=settings.retry_max_backoff,
            threshold_override=settings.label_threshold,
            data_attempts=settings.poison_attempts,
        )

    def __init__(
        self,
        url: str,
        model_name: str,
        *,
        tls: TritonTLS | None = None,
        timeout: float = 30.0,
        initial_backoff: float = 0.2,
        max_backoff: float = 10.0,
        threshold_override: float | None = None,
        data_attempts: int = 3,
    ) -> None:
        self.url = url
        self.tls = tls
        # Read now: a missing certificate is a setup error, never an outage to retry.
        self._tls_options = tls.client_options() if tls else {}
        self.threshold_override = threshold_override
        self.model_name = model_name
        self.timeout = timeout
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.data_attempts = data_attempts
        self._client: grpcclient.InferenceServerClient | None = None
        self._max_batch = 0
        self._outputs: tuple[str, ...] = OUTPUTS
        self._info: ModelInfo | None = None

    def _connection(self) -> grpcclient.InferenceServerClient:
        if self._client is None:
            self._client = grpcclient.InferenceServerClient(self.url, **self._tls_options)
        return self._client

    async def _reset(self, _exc: BaseException) -> None:
        # A fresh channel after a failure: a restarted server is picked up at once
        # instead of after gRPC's own reconnect backoff.
        if self._client is not None:
            client, self._client = self._client, None
            # Closing a broken channel may fail too; the channel is dropped either way.
            with contextlib.suppress(Exception):
                await client.close()

    async def close(self) -> None:
        await self._reset(RuntimeError("close"))

    async def model_info(self) -> ModelInfo:
        """Name, version label and threshold, from the ensemble's config parameters."""
        if self._info is None:
            self._info = await retry(
                self._fetch_info,
                what=f"reading Triton model config of {self.model_name!r} at {self.url}",
                log=log,
                initial_backoff=self.initial_backoff,
                max_backoff=self.max_backoff,
                on_failure=self._reset,
            )
        return self._info

    async def served(self) -> bool:
        """Does this Triton serve the model? Waits out a server that does not answer."""

        async def ask() -> bool:
            connection = self._connection()
            if not await connection.is_server_live():
                raise ConnectionError(f"Triton at {self.url} is not live")
            return bool(await connection.is_model_ready(self.model_name))

        return await retry(
            ask,
            what=f"asking Triton at {self.url} for model {self.model_name!r}",
            log=log,
            initial_backoff=self.initial_backoff,
            max_backoff=self.max_backoff,
            on_failure=self._reset,
        )

    async def check(self) -> None:
        """One attempt, no retry: raises if Triton does not answer or does not serve the
        model. For commands a person runs, which should fail at once and say why; the
        worker waits outages out instead."""
        connection = self._connection()
        if not await connection.is_server_live():
            raise ConnectionError("is not live")
        if not await connection.is_model_ready(self.model_name):
            raise LookupError(
                f"does not serve model {self.model_name!r} (not in its model repository, "
                "or not loaded)"
            )

    async def _fetch_info(self) -> ModelInfo:
        response = await self._connection().get_model_config(self.model_name, as_json=True)
        config = response["config"]
        params = config.get("parameters", {})
        self._max_batch = int(config.get("max_batch_size", 0)) or 256
        declared = {o.get("name") for o in config.get("output", [])}
        self._outputs = (*OUTPUTS, VAD) if VAD in declared else OUTPUTS
        return ModelInfo(
            name=self.model_name,
            version=params.get("moodpipe_model_version", {}).get("string_value", "unknown"),
        )

    async def score(self, texts: list[str], data_attempts: int | None = None) -> Predictions:
        """Probabilities, labels, Ekman and sentiment groups.

        Waits out Triton outages; any other failure (Triton rejecting this input, a
        text the client cannot encode) is raised after `data_attempts` tries (default:
        the client's), for the caller to isolate the texts that cause it.
        """
        await self.model_info()
        attempts = self.data_attempts if data_attempts is None else data_attempts
        parts = []
        for start in range(0, len(texts), self._max_batch):
            chunk = texts[start : start + self._max_batch]
            parts.append(
                await retry(
                    functools.partial(self._infer, chunk),
                    what=f"Triton inference ({len(chunk)} texts) at {self.url}",
                    log=log,
                    initial_backoff=self.initial_backoff,
                    max_backoff=self.max_backoff,
                    on_failure=self._reset,
                    data_attempts=attempts,
                )
            )
        result = Predictions.concat(parts)
        if self.threshold_override is not None:
            result = result.with_threshold(self.threshold_override, LABELS)
        return result

    async def probe(self) -> None:
        """Score a known-good text once: does the model work for anything right now?"""
        await self.score([PROBE_TEXT], data_attempts=1)

    async def _infer(self, texts: list[str]) -> Predictions:
        data = np.array([t.encode("utf-8") for t in texts], dtype=np.object_).reshape(-1, 1)
        tensor = grpcclient.InferInput(INPUT, list(data.shape), "BYTES")
        tensor.set_data_from_numpy(data)
        result = await self._connection().infer(
            self.model_name,
            [tensor],
            outputs=[grpcclient.InferRequestedOutput(name) for name in self._outputs],
            client_timeout=self.timeout,
        )
        probs = result.as_numpy("PROBABILITIES")
        if probs is None or probs.shape != (len(texts), 28):
            raise InferenceServerException(
                f"unexpected output shape {getattr(probs, 'shape', None)}"
            )

        def strings(name: str) -> list[str]:
            return [v.decode() for v in result.as_numpy(name).reshape(-1)]

        vad = result.as_numpy(VAD) if VAD in self._outputs else None
        if vad is not None and vad.shape != (len(texts), 3):
            raise InferenceServerException(f"unexpected VAD shape {vad.shape}")
        return Predictions(
            probabilities=probs,
            labels=[ls.split(",") if ls else [] for ls in strings("LABELS")],
            ekman=strings("EKMAN"),
            sentiment=strings("SENTIMENT"),
            vad=vad,
        )
