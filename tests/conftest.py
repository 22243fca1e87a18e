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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # `make test-fast` selects `-m "not services"`: a test that starts the local runtime
    # (directly or through `namespace`) without the marker would start it there too.
    unmarked = [
        item.nodeid
        for item in items
        if "moodpipe_runtime" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("services") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests use the local runtime but are not marked services: " + ", ".join(unmarked)
        )
