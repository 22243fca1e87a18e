"""Our own tests use the same fixtures users get for their replay tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.local.runtime import LocalRuntime
from pipeline.testing import PipelineNamespace

pytest_plugins = ["pipeline.testing.plugin"]


@pytest.fixture
def runtime(moodpipe_runtime: LocalRuntime) -> LocalRuntime:
    return moodpipe_runtime


@pytest.fixture
def namespace(moodpipe_namespace: PipelineNamespace) -> PipelineNamespace:
    return moodpipe_namespace


def spawn_worker(ns: PipelineNamespace, name: str = "worker"):
    return ns.start_worker(name)


# The tests' own Triton models (tests/triton_models: a model that fails for one input)
# are served next to the product's by the session runtime.
os.environ.setdefault(
    "MOODPIPE_TRITON_EXTRA_MODEL_REPOSITORY", str(Path(__file__).parent / "triton_models")
)
