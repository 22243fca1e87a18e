"""Paths to the repository's non-Python resources (schemas, Triton models, dashboards).

In a checkout (editable install) they sit beside the package; a wheel carries copies
under `pipeline/_resources/` (see pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    for candidate in (_PACKAGE.parent / name, _PACKAGE / "_resources" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"resource folder {name!r} not found beside {_PACKAGE}")


def schemas_dir() -> Path:
    return resource_dir("schemas")


def triton_models_dir() -> Path:
    return resource_dir("triton_models")
