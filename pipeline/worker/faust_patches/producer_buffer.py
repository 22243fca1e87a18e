"""The table changelog's producer buffer, sized for the alert detector (patch 7).

Faust pauses every stream while more than `ProducerBuffer.max_messages` (100) table
changelog messages wait to be produced, then drains them with a 0.1 s wait each: the
alert detector writes hundreds per batch, so consumption stalled for seconds
("producer buffer full"). The messages are produced all the same; the bound only
needs to keep memory in check. The buffer exists once the app's producer does, so
this runs as an app task, after start.
"""

from __future__ import annotations

from typing import Any


def size_producer_buffer(app: Any, max_messages: int) -> None:
    app.producer.buffer.max_messages = max_messages
