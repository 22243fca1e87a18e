"""Delivering alerts outside Kafka and ClickHouse: a webhook and Grafana annotations.

Both are optional (no URL, no channel). Deliveries retry with capped exponential
backoff, then give up and record the failure in ClickHouse `alert_deliveries`; the
alert itself is already in Kafka and ClickHouse, so a dead webhook costs a message,
not an alert. A channel whose last alert failed every attempt gets one attempt per
alert until it works again, so an outage cannot pile up retries and stall the
alerts stream. Ids already delivered are skipped, so re-consumed alerts do not page
twice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from pipeline.alerts.models import Alert

log = logging.getLogger("moodpipe.alerts.notify")

SEVERITY_COLOURS = {"info": "#2eb67d", "warning": "#ecb22e", "critical": "#e01e5a"}


class PermanentDeliveryError(Exception):
    """The receiver refused the alert (e.g. HTTP 400/404): retrying cannot help."""


def slack_payload(alert: Alert) -> dict[str, Any]:
    """Slack-compatible incoming-webhook JSON; `alert` carries the full alert for machines."""
    evidence = alert.evidence
    fields = [
        {"title": "Brand", "value": alert.brand or "(none)", "short": True},
        {"title": "Source", "value": alert.source, "short": True},
    ]
    if alert.kind == "angry_customer":
        fields += [
            {"title": "Customer", "value": f"{alert.subject} ({evidence.get('customer_tier')})",
             "short": True},
            {"title": "Anger", "value": f"{evidence.get('anger_score', 0):.2f}", "short": True},
        ]  # fmt: skip
    else:
        fields.append({"title": "Window volume", "value": str(evidence.get("volume")),
                       "short": True})  # fmt: skip
    return {
        "text": f"[{alert.severity.upper()}] {alert.title}",
        "attachments": [
            {
                "color": SEVERITY_COLOURS.get(alert.severity, "#999999"),
                "title": alert.title,
                "text": alert.message,
                "fields": fields,
                "footer": f"moodpipe {alert.kind} {alert.alert_id}",
                "ts": int(alert.event_time),
            }
        ],
        "alert": alert.to_message(),
    }


@dataclass
class Channel:
    name: str
    send: Callable[[Alert], Awaitable[None]]
    max_attempts: int
    initial_backoff: float
    max_backoff: float
    degraded: bool = False  # the last alert failed every attempt

    async def deliver(self, alert: Alert) -> tuple[str, int, str]:
        """(status, attempts, error) after at most max_attempts tries."""
        attempts = 1 if self.degraded else self.max_attempts
        backoff = self.initial_backoff
        error = ""
        for attempt in range(1, attempts + 1):
            try:
                await self.send(alert)
            except asyncio.CancelledError:
                raise
            except PermanentDeliveryError as exc:
                return "failed", attempt, str(exc)
            except Exception as exc:  # noqa: BLE001 - any failure of a receiver is retried
                error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("%s delivery of %s failed (attempt %d/%d): %s",
                            self.name, alert.alert_id, attempt, attempts, error)  # fmt: skip
                if attempt < attempts:
                    await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
                    backoff = min(backoff * 2, self.max_backoff)
                continue
            self.degraded = False
            return "sent", attempt, ""
        self.degraded = True
        return "failed", attempts, error


def webhook_sender(url: str, timeout: float) -> Callable[[Alert], Awaitable[None]]:
    session: aiohttp.ClientSession | None = None

    async def send(alert: Alert) -> None:
        nonlocal session
        if session is None or session.closed:
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
        async with session.post(url, json=slack_payload(alert)) as response:
            body = (await response.text())[:200]
            if response.status == 429 or response.status >= 500:
                raise RuntimeError(f"HTTP {response.status}: {body}")
            if response.status >= 400:
                raise PermanentDeliveryError(f"HTTP {response.status}: {body}")

    return send


def grafana_sender(url: str, token: str, timeout: float) -> Callable[[Alert], Awaitable[None]]:
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError

    api = GrafanaApi.from_url(url, credential=token or None, timeout=timeout)

    def post(alert: Alert) -> None:
        try:
            api.annotations.add_annotation(
                time_from=int(alert.window_start * 1000)
                if alert.kind != "angry_customer"
                else int(alert.event_time * 1000),
                time_to=int(alert.window_end * 1000),
                tags=[
                    "moodpipe",
                    alert.kind,
                    alert.severity,
                    f"brand:{alert.brand}",
                    f"source:{alert.source}",
                ],
                text=f"<b>{alert.title}</b><br>{alert.message}",
            )
        except GrafanaClientError as exc:
            if 400 <= exc.status_code < 500 and exc.status_code != 429:
                raise PermanentDeliveryError(f"HTTP {exc.status_code}: {exc.message}") from exc
            raise

    async def send(alert: Alert) -> None:
        await asyncio.to_thread(post, alert)

    return send
