"""Recordings of Kafka topics: `moodpipe record` writes them, `moodpipe replay` plays them.

Format: docs/recording-format.md.
"""

from pipeline.recording.format import (
    FORMAT_VERSION,
    RecordedMessage,
    RecordingCorruptError,
    RecordingError,
    RecordingReader,
    RecordingTruncatedError,
    RecordingWriter,
)

__all__ = [
    "FORMAT_VERSION",
    "RecordedMessage",
    "RecordingCorruptError",
    "RecordingError",
    "RecordingReader",
    "RecordingTruncatedError",
    "RecordingWriter",
]
