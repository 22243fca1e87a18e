"""Input records: decoding and validating raw Kafka values into typed posts and tickets."""

from pipeline.records.models import Rejected, SocialPost, SupportTicket
from pipeline.records.validate import RecordValidator

__all__ = ["RecordValidator", "Rejected", "SocialPost", "SupportTicket"]
