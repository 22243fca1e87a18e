"""Does every reply template of a playbook read calm and caring? Scored by the model.

The check the tests run on the packaged playbook, and `moodpipe alerts playbook FILE
--score` runs on yours: each entry's template, filled with neutral sample values, is
scored through the same routing and model as a ticket; it passes when its anger score
(the `angry_customer` emotions summed) is below `min_anger`, its sentiment is
positive or neutral and its sentiment score above 0.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pipeline.alerts.playbook import Playbook
from pipeline.alerts.rules import AlertRules
from pipeline.emotions import LABELS
from pipeline.postprocess import summarise_predictions
from pipeline.scoring.routing import ModelRouter, in_order

SAMPLE_VALUES = {
    "ticket_id": "T-1042", "thread_id": "TH-7", "product": "billing", "tier": "standard",
    "customer_id": "C-1", "customer_words": "the second charge on my card",
}  # fmt: skip


@dataclass(frozen=True)
class TemplateTone:
    entry: str
    draft: str
    anger: float
    sentiment: str
    sentiment_score: float
    calm: bool


def template_tones(
    playbook: Playbook, router: ModelRouter, rules: AlertRules, lang: str = "en"
) -> list[TemplateTone]:
    entries = playbook.file.entries
    drafts = [" ".join(e.template.format_map(SAMPLE_VALUES).split()) for e in entries]
    parts = asyncio.run(router.score(drafts, [lang] * len(drafts)))
    summaries = {id(p): summarise_predictions(p.predictions) for p in parts}
    angry = rules.file.angry_customer
    columns = [LABELS.index(e) for e in angry.emotions]
    out = []
    for i, part, row in in_order(parts, len(drafts)):
        anger = float(part.predictions.probabilities[row, columns].sum())
        sentiment = part.predictions.sentiment[row]
        score = summaries[id(part)].sentiment_score[row]
        calm = anger < angry.min_anger and sentiment in ("positive", "neutral") and score > 0
        out.append(TemplateTone(entries[i].id, drafts[i], round(anger, 4), sentiment,
                                round(score, 4), calm))  # fmt: skip
    return out
