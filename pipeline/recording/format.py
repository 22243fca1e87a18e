"""The moodpipe recording format, version 1 (specified in docs/recording-format.md).

A file header (magic, version, JSON description of the source), then blocks of
records, each block zstd-compressed on its own with a CRC32, then a trailer with
counts and the time range. Blocks are written as records stream in, so recording
never holds a topic in memory, and a damaged file loses only what follows the
damage: the reader yields every intact record before it raises.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

MAGIC = b"MOODPIPE-REC"
FORMAT_VERSION = 1
BLOCK_TAG = b"B"
TRAILER_TAG = b"E"
BLOCK_RECORDS = 1000
BLOCK_BYTES = 1 << 20

_FILE_HEAD = struct.Struct(">12sHI")  # magic, version, header JSON length
_U32 = struct.Struct(">I")
_BLOCK_HEAD = struct.Struct(">IIII")  # compressed length, raw length, records, crc32
_RECORD_HEAD = struct.Struct(">HIqqB")  # topic index, partition, offset, timestamp ms, ts type
_I32 = struct.Struct(">i")
_U16 = struct.Struct(">H")


class RecordingError(Exception):
    """A recording cannot be read; the message says where and what was intact."""


class RecordingCorruptError(RecordingError):
    pass


class RecordingTruncatedError(RecordingError):
    pass


@dataclass(frozen=True, slots=True)
class RecordedMessage:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    timestamp_type: int  # 0 create time, 1 log-append time (Kafka's own codes)
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


def _crc(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _bytes_field(data: bytes | None) -> bytes:
    return _I32.pack(-1) if data is None else _I32.pack(len(data)) + data


@dataclass
class _Stats:
    records: int = 0
    blocks: int = 0
    first_timestamp_ms: int | None = None
    last_timestamp_ms: int | None = None
    partitions: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, m: RecordedMessage) -> None:
        self.records += 1
        ts = m.timestamp_ms
        self.first_timestamp_ms = (
            ts if self.first_timestamp_ms is None else min(self.first_timestamp_ms, ts)
        )
        self.last_timestamp_ms = (
            ts if self.last_timestamp_ms is None else max(self.last_timestamp_ms, ts)
        )
        p = self.partitions.setdefault(
            f"{m.topic}:{m.partition}", {"first_offset": m.offset, "count": 0}
        )
        p["last_offset"] = m.offset
        p["count"] += 1


class RecordingWriter:
    """Streams messages into a recording file; `close()` writes the trailer."""

    def __init__(self, path: Path, source: dict[str, Any], tool_version: str) -> None:
        self.path = path
        self.topics: list[str] = list(source.get("topics", {}))
        self._index = {t: i for i, t in enumerate(self.topics)}
        self._file: BinaryIO = path.open("wb")
        self._compressor = zstandard.ZstdCompressor(level=6)
        self._buffer = bytearray()
        self._buffered = 0
        self.stats = _Stats()
        header = json.dumps(
            {
                "format": "moodpipe-recording",
                "version": FORMAT_VERSION,
                "tool": tool_version,
                "source": source,
            },
            sort_keys=True,
        ).encode()
        self._file.write(_FILE_HEAD.pack(MAGIC, FORMAT_VERSION, len(header)))
        self._file.write(header + _U32.pack(_crc(header)))

    def write(self, m: RecordedMessage) -> None:
        if m.topic not in self._index:
            raise ValueError(f"topic {m.topic!r} is not in the recording header {self.topics}")
        b = self._buffer
        b += _RECORD_HEAD.pack(
            self._index[m.topic], m.partition, m.offset, m.timestamp_ms, m.timestamp_type
        )
        b += _bytes_field(m.key)
        b += _bytes_field(m.value)
        b += _U16.pack(len(m.headers))
        for name, value in m.headers:
            encoded = name.encode()
            b += _U16.pack(len(encoded)) + encoded + _bytes_field(value)
        self._buffered += 1
        self.stats.add(m)
        if self._buffered >= BLOCK_RECORDS or len(b) >= BLOCK_BYTES:
            self._flush_block()

    def _flush_block(self) -> None:
        if not self._buffered:
            return
        raw = bytes(self._buffer)
        payload = self._compressor.compress(raw)
        self._file.write(
            BLOCK_TAG + _BLOCK_HEAD.pack(len(payload), len(raw), self._buffered, _crc(payload))
        )
        self._file.write(payload)
        self._buffer.clear()
        self._buffered = 0
        self.stats.blocks += 1

    def close(self) -> dict[str, Any]:
        self._flush_block()
        s = self.stats
        trailer = {
            "records": s.records,
            "blocks": s.blocks,
            "first_timestamp_ms": s.first_timestamp_ms,
            "last_timestamp_ms": s.last_timestamp_ms,
            "partitions": s.partitions,
        }
        data = json.dumps(trailer, sort_keys=True).encode()
        self._file.write(TRAILER_TAG + _U32.pack(len(data)) + data + _U32.pack(_crc(data)))
        self._file.close()
        return trailer

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._file.closed:
            self.close()


class RecordingReader:
    """Reads a recording, checking every block; iterate to get the messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO = path.open("rb")
        self.records_read = 0
        self.trailer: dict[str, Any] | None = None
        head = self._file.read(_FILE_HEAD.size)
        if len(head) < _FILE_HEAD.size or not head.startswith(MAGIC[: len(head)]):
            raise RecordingCorruptError(f"{path} is not a moodpipe recording (bad magic bytes)")
        magic, version, length = _FILE_HEAD.unpack(head)
        if magic != MAGIC:
            raise RecordingCorruptError(f"{path} is not a moodpipe recording (bad magic bytes)")
        if version != FORMAT_VERSION:
            raise RecordingError(
                f"{path} is recording format version {version}; this moodpipe reads "
                f"version {FORMAT_VERSION}"
            )
        data = self._file.read(length)
        crc = self._file.read(4)
        if len(data) < length or len(crc) < 4:
            raise RecordingTruncatedError(f"{path} ends inside its header: no records to read")
        if _U32.unpack(crc)[0] != _crc(data):
            raise RecordingCorruptError(f"{path}: the header is damaged (CRC mismatch)")
        self.header: dict[str, Any] = json.loads(data)
        self.topics: list[str] = list(self.header["source"]["topics"])
        self._decompressor = zstandard.ZstdDecompressor()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _where(self, block: int) -> str:
        return (
            f"{self.path} at byte {self._file.tell()} (block {block}); "
            f"the {self.records_read} records before it are intact"
        )

    def __iter__(self) -> Iterator[RecordedMessage]:
        block = 0
        while True:
            tag = self._file.read(1)
            if not tag:
                raise RecordingTruncatedError(
                    f"recording is truncated: no trailer in {self._where(block)}"
                )
            if tag == TRAILER_TAG:
                self._read_trailer(block)
                return
            if tag != BLOCK_TAG:
                raise RecordingCorruptError(
                    f"recording is corrupt: unexpected byte {tag!r} in {self._where(block)}"
                )
            head = self._file.read(_BLOCK_HEAD.size)
            if len(head) < _BLOCK_HEAD.size:
                raise RecordingTruncatedError(f"recording is truncated inside {self._where(block)}")
            length, raw_length, count, crc = _BLOCK_HEAD.unpack(head)
            payload = self._file.read(length)
            if len(payload) < length:
                raise RecordingTruncatedError(f"recording is truncated inside {self._where(block)}")
            if _crc(payload) != crc:
                raise RecordingCorruptError(
                    f"recording is corrupt: CRC mismatch in {self._where(block)}"
                )
            try:
                raw = self._decompressor.decompress(payload, max_output_size=raw_length)
            except zstandard.ZstdError as exc:
                raise RecordingCorruptError(
                    f"recording is corrupt: {exc} in {self._where(block)}"
                ) from exc
            messages = list(self._decode(raw, count, block))
            for m in messages:
                self.records_read += 1
                yield m
            block += 1

    def _decode(self, raw: bytes, count: int, block: int) -> Iterator[RecordedMessage]:
        pos = 0

        def take(n: int) -> bytes:
            nonlocal pos
            if pos + n > len(raw):
                raise RecordingCorruptError(
                    f"recording is corrupt: block {block} is shorter than "
                    f"its records in {self.path}"
                )
            chunk = raw[pos : pos + n]
            pos += n
            return chunk

        def nullable() -> bytes | None:
            (n,) = _I32.unpack(take(4))
            return None if n < 0 else take(n)

        for _ in range(count):
            topic_idx, partition, offset, ts, ts_type = _RECORD_HEAD.unpack(take(_RECORD_HEAD.size))
            key = nullable()
            value = nullable()
            (n_headers,) = _U16.unpack(take(2))
            headers = []
            for _ in range(n_headers):
                (name_len,) = _U16.unpack(take(2))
                headers.append((take(name_len).decode(), nullable()))
            yield RecordedMessage(
                self.topics[topic_idx], partition, offset, ts, ts_type, key, value, tuple(headers)
            )

    def _read_trailer(self, block: int) -> None:
        head = self._file.read(4)
        if len(head) < 4:
            raise RecordingTruncatedError(
                f"recording is truncated inside its trailer: {self._where(block)}"
            )
        (length,) = _U32.unpack(head)
        data = self._file.read(length)
        crc = self._file.read(4)
        if len(data) < length or len(crc) < 4:
            raise RecordingTruncatedError(
                f"recording is truncated inside its trailer: {self._where(block)}"
            )
        if _U32.unpack(crc)[0] != _crc(data):
            raise RecordingCorruptError(
                f"recording trailer is damaged (CRC mismatch): {self._where(block)}"
            )
        self.trailer = json.loads(data)
        if self.trailer["records"] != self.records_read:
            raise RecordingCorruptError(
                f"recording says it holds {self.trailer['records']} records but "
                f"{self.records_read} were read from {self.path}"
            )
