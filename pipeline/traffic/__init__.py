"""Sample traffic: realistic posts and tickets (GoEmotions texts), multilingual posts
(hand-written) and bad records."""

from pipeline.traffic.generate import (
    BRANDS,
    SampleRecord,
    bad_records,
    multilingual_language,
    sample_multilingual_posts,
    sample_posts,
    sample_tickets,
)
from pipeline.traffic.produce import produce

__all__ = [
    "BRANDS",
    "SampleRecord",
    "bad_records",
    "multilingual_language",
    "produce",
    "sample_multilingual_posts",
    "sample_posts",
    "sample_tickets",
]
