"""Sample traffic: realistic posts and tickets (GoEmotions texts) plus bad records."""

from pipeline.traffic.generate import (
    BRANDS,
    SampleRecord,
    bad_records,
    sample_posts,
    sample_tickets,
)
from pipeline.traffic.produce import produce

__all__ = ["BRANDS", "SampleRecord", "bad_records", "produce", "sample_posts", "sample_tickets"]
