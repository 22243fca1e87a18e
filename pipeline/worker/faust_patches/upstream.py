"""Every upstream function a patch replaces, wraps or relies on, pinned by a hash of its
source, so a faust-streaming, mode or aiokafka upgrade fails loudly in the tests
(`tests/test_faust_fixes.py`) and in the worker's log, never silently in production.

The originals are captured here, at import, before any patch is installed.
"""

from __future__ import annotations

import hashlib
import inspect
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.streams import Stream
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.producer import ProducerBuffer
from mode.utils.queues import FlowControlEvent


@dataclass(frozen=True)
class Pin:
    name: str  # where it lives upstream
    patch: str  # the patch that depends on it (a module of this package)
    sha256: str  # of its source in the versions pyproject.toml pins
    original: Any  # the upstream object itself, captured before patching

    def source(self) -> str:
        return inspect.getsource(self.original)

    def matches(self) -> bool:
        return hashlib.sha256(self.source().encode()).hexdigest() == self.sha256


# faust-streaming 0.15.3, mode-streaming 0.7.1, aiokafka 0.14.0.
PINS: tuple[Pin, ...] = (
    Pin("mode.utils.queues.FlowControlEvent", "flow_control",
        "1da8f905ab655e3927cb96e28dfa38354bd18c849554fa86bf118439dbe6b1a6", FlowControlEvent),
    Pin("faust.transport.consumer.Consumer.ack", "stall_guard",
        "5fcf41cf45153475de3790dc56fec1b83335956dc8b3bf7ff6bbb2b57627f03f", Consumer.ack),
    Pin("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._ensure_consumer",
        "stall_guard", "ff4a4c693b7ec63f4a76dfb61c419380bef70dd32383fe38ebcfcc27091605a6",
        AIOKafkaConsumerThread._ensure_consumer),
    Pin("faust.streams.Stream.noack_take", "batches",
        "f2cc2dbfc162d2006c94361c0ed68535c95484020849eb0d4210c1f52c4c430a", Stream.noack_take),
    Pin("faust.streams.Stream.ack", "batches",
        "32d7171a89b0931d806a87dc81dcba5673dd9702f8a6add8426e0e236b9e8fef", Stream.ack),
    Pin("faust.transport.consumer.Consumer._new_offset", "commit_guard",
        "1d2c7ea89a7ad4f1a216c1d51936e569162cd66bd56f889e13fd29c910b58eb0", Consumer._new_offset),
    Pin("faust.transport.consumer.Consumer._drain_messages", "delivery",
        "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417",
        Consumer._drain_messages),
    Pin("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread._create_worker_consumer",
        "fetch_wait", "c2701bfc3e6f6cad95c2be36d6a255a86e2c57d18d36cc1082b5fb5c482d99d7",
        AIOKafkaConsumerThread._create_worker_consumer),
    Pin("aiokafka.AIOKafkaConsumer.start", "fetch_wait",
        "2f1ba70443327538800d348e61042cdedd5a5e6306f40ebe1a06dddba7494c45",
        AIOKafkaConsumer.start),
    Pin("faust.transport.producer.ProducerBuffer.wait_until_ebb", "producer_buffer",
        "758dd5744044071bbc79609fa8e5bfc339818f186bc19b723de2c4c877412e00",
        ProducerBuffer.wait_until_ebb),
)  # fmt: skip


def pin(name: str) -> Pin:
    return next(p for p in PINS if p.name == name)


def changed() -> list[Pin]:
    """The pins whose upstream source is no longer the reviewed one."""
    return [p for p in PINS if not p.matches()]
