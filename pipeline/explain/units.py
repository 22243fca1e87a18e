"""The units an explanation removes one at a time: words, however a language writes them.

- Text with spaces (Latin, Cyrillic, Greek, Arabic, Devanagari, Hangul, ...): words,
  runs of letters and digits with inner apostrophes or hyphens ("don't", "e-mail").
- Chinese has no spaces: Han runs are cut into words by jieba's dictionary
  segmenter (its default dictionary; 航空公司 / 太 / 糟糕 / 了), so "糟糕" is removed as
  one unit rather than 糟 and 糕 apart, which would each leave a half-word the model
  still half reads.
- Japanese kana and Thai have no spaces and no segmenter here: runs of one script
  are cut into pieces of at most `UNSPACED_PIECE` characters.

Punctuation and emoji are never units: they carry emotion ("!!!") but removing them
one at a time explains little and costs a model call each.

A long text gets at most `max_units` units: neighbouring words are merged into
groups of equal size, so the cost of an explanation is bounded by one batch.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

# Letters and digits with inner ' ’ - ; \w without "_".
_WORD = re.compile(r"[^\W_]+(?:['\u2019\-][^\W_]+)*")
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_KANA = "\u3040-\u30ff\u31f0-\u31ff"
_THAI = "\u0e00-\u0e7f"
_UNSPACED = re.compile(f"[{_HAN}]+|[{_KANA}]+|[{_THAI}]+")
_HAN_RUN = re.compile(f"[{_HAN}]+")
UNSPACED_PIECE = 2
DEFAULT_MAX_UNITS = 48


@dataclass(frozen=True, slots=True)
class Unit:
    start: int
    end: int
    text: str


@cache
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)  # it logs its dictionary load at INFO
    jieba.initialize()
    return jieba


def load_segmenter() -> None:
    """Load jieba's dictionary now (about 1 s, once per process), e.g. off the event
    loop, rather than inside the first Chinese explanation."""
    _jieba()


def _split_unspaced(word: str, offset: int) -> list[Unit]:
    """Units of a word that contains unspaced script (Han, kana, Thai)."""
    units: list[Unit] = []
    at = 0
    for run in _UNSPACED.finditer(word):
        if run.start() > at:  # letters of a spaced script glued to it ("iPhone坏了")
            units.append(Unit(offset + at, offset + run.start(), word[at : run.start()]))
        chunk = run.group()
        if _HAN_RUN.fullmatch(chunk):
            for piece, start, end in _jieba().tokenize(chunk):
                units.append(Unit(offset + run.start() + start, offset + run.start() + end, piece))
        else:
            for i in range(0, len(chunk), UNSPACED_PIECE):
                piece = chunk[i : i + UNSPACED_PIECE]
                units.append(Unit(offset + run.start() + i, offset + run.start() + i + len(piece),
                                  piece))  # fmt: skip
        at = run.end()
    if at < len(word):
        units.append(Unit(offset + at, offset + len(word), word[at:]))
    return units


def text_units(text: str, max_units: int = DEFAULT_MAX_UNITS) -> list[Unit]:
    """The text's units in order, at most `max_units` (neighbours merged past that)."""
    units: list[Unit] = []
    for match in _WORD.finditer(text):
        word = match.group()
        if _UNSPACED.search(word):
            units.extend(_split_unspaced(word, match.start()))
        else:
            units.append(Unit(match.start(), match.end(), word))
    if len(units) <= max_units:
        return units
    size = math.ceil(len(units) / max_units)
    merged = []
    for i in range(0, len(units), size):
        group = units[i : i + size]
        start, end = group[0].start, group[-1].end
        merged.append(Unit(start, end, text[start:end]))
    return merged


def without(text: str, units: list[Unit]) -> str:
    """`text` with `units` cut out (spaces left as they are: tokenizers ignore them)."""
    out, at = [], 0
    for unit in sorted(units, key=lambda u: u.start):
        out.append(text[at : unit.start])
        at = unit.end
    out.append(text[at:])
    return "".join(out)
