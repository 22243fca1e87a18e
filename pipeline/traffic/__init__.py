"""Sample traffic: realistic posts and tickets (GoEmotions texts), multilingual posts
and support threads (hand-written) and bad records."""

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
from pipeline.traffic.threads import sample_threads, written_threads

__all__ = [
    "BRANDS",
    "SampleRecord",
    "bad_records",
    "multilingual_language",
    "produce",
    "sample_multilingual_posts",
    "sample_posts",
    "sample_threads",
    "sample_tickets",
    "written_threads",
]
