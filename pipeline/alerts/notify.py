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
import html
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
    elif alert.kind.startswith("thread_"):
        fields += [
            {"title": "Customer", "value": f"{evidence.get('customer_id')} "
             f"({evidence.get('customer_tier')})", "short": True},
            {"title": "Mood", "value": f"first {evidence.get('first_mood', 0):+.2f}, now "
             f"{evidence.get('current_mood', 0):+.2f}", "short": True},
        ]  # fmt: skip
    else:
        fields.append({"title": "Window volume", "value": str(evidence.get("volume")),
                       "short": True})  # fmt: skip
    why = why_flagged(alert)
    if why:
        fields.append({"title": "Why flagged", "value": why, "short": False})
    if alert.reply:
        fields.append({"title": f"Suggested reply ({alert.reply['tone']})",
                       "value": alert.reply["draft"], "short": False})  # fmt: skip
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


def summary(explanation: dict[str, Any], k: int = 3) -> str:
    """'furious (-0.41), disgrace (-0.22)': one text's top words and how far removing
    each lowered the score."""
    words = explanation.get("top") or []
    if not words:
        return str(explanation.get("error") or "no single word moves the score")
    return ", ".join(f"{w['word']} (-{w['delta']:.2f})" for w in words[:k])


def why_flagged(alert: Alert) -> str:
    """The words behind the alert, one line: 'furious (-0.41), disgrace (-0.22)'."""
    texts = (alert.explanation or {}).get("texts") or []
    return "; ".join(summary(t) for t in texts if t.get("top") or t.get("error"))


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


def grafana_text(alert: Alert) -> str:
    parts = [f"<b>{html.escape(alert.title)}</b>", html.escape(alert.message)]
    why = why_flagged(alert)
    if why:
        parts.append(f"Why flagged: {html.escape(why)}")
    if alert.reply:
        parts.append(f"Suggested tone: {html.escape(alert.reply['tone'])}")
    return "<br>".join(parts)


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
                text=grafana_text(alert),
            )
        except GrafanaClientError as exc:
            if 400 <= exc.status_code < 500 and exc.status_code != 429:
                raise PermanentDeliveryError(f"HTTP {exc.status_code}: {exc.message}") from exc
            raise

    async def send(alert: Alert) -> None:
        await asyncio.to_thread(post, alert)

    return send
