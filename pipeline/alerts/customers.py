"""`angry_customer`: per-customer rules over scored tickets, with cooldown and escalation.

State per (brand, customer) is a small JSON dict kept in a Faust table (so it lives
in a changelog topic and moves with its partition). Functions here are pure: they
take the old state and return the new one, which the agent writes back only after
any alert is on the alerts topic.
"""

from __future__ import annotations

from typing import Any

from pipeline.alerts.models import Alert, ScoredEvent, Severity, alert_id
from pipeline.alerts.rules import PRIORITIES, AngryCustomerRule

CustomerState = dict[str, Any]


def new_customer_state() -> CustomerState:
    return {
        "contacts": [],  # [created_at, event_id, thread_id] of recent tickets
        "triggers": [],  # created_at of recent tickets that met the rule
        "last_alert": None,  # created_at of the last alerted ticket
        "last_severity": None,
        "suppressed": 0,  # triggers held back by the cooldown since the last alert
    }


def anger_score(event: ScoredEvent, rule: AngryCustomerRule) -> float:
    return min(1.0, sum(event.scores.get(e, 0.0) for e in rule.emotions))


def observe_ticket(
    state: CustomerState | None, event: ScoredEvent, rule: AngryCustomerRule
) -> tuple[CustomerState, list[Alert]]:
    state = _copy(state) if state is not None else new_customer_state()
    t = event.created_at
    if any(c[1] == event.event_id for c in state["contacts"]):
        return state, []  # the same ticket again (re-delivered): already counted
    horizon = max(rule.repeat_window, rule.escalation_window)
    thread = event.thread_id or event.event_id
    state["contacts"] = [c for c in state["contacts"] if t - c[0] < horizon] + [
        [t, event.event_id, thread]
    ]
    # Contacts are threads: three messages in one conversation are one contact. (Entries
    # from before threads have no thread: each was a ticket of its own.)
    contacts = len({c[2] if len(c) > 2 else c[1] for c in state["contacts"]
                    if 0 <= t - c[0] < rule.repeat_window})  # fmt: skip

    anger = anger_score(event, rule)
    arousal = event.arousal
    reasons = []
    aroused_enough = rule.min_arousal is None or arousal is None or arousal >= rule.min_arousal
    angry = anger >= rule.min_anger and (event.negative or not rule.require_negative)
    if angry and aroused_enough:
        reasons.append("anger")
    heated = (
        angry and rule.critical_arousal is not None and arousal is not None
        and arousal >= rule.critical_arousal
    )  # fmt: skip
    if heated:
        reasons.append("high_arousal")
    if contacts >= rule.repeat_contacts and event.negative:
        reasons.append("repeat_contacts")
    if not reasons or _rank(event.priority) < _rank(rule.min_priority):
        return state, []

    state["triggers"] = [x for x in state["triggers"] if 0 <= t - x < rule.escalation_window]
    state["triggers"].append(t)
    severity: Severity = (
        "critical" if heated or len(state["triggers"]) >= rule.escalate_after else "warning"
    )
    last = state["last_alert"]
    cooling = last is not None and abs(t - last) < rule.cooldown
    escalating = severity == "critical" and state["last_severity"] != "critical"
    if cooling and not escalating:
        state["suppressed"] += 1
        return state, []

    suppressed = state["suppressed"]
    state.update(last_alert=t, last_severity=severity, suppressed=0)
    emotions = {e: round(event.scores.get(e, 0.0), 4) for e in rule.emotions}
    excerpt = excerpt_of(event, rule.excerpt_chars)
    what = " and ".join(
        {
            "anger": f"anger {anger:.2f}",
            "repeat_contacts": f"{contacts} contacts",
            "high_arousal": f"arousal {arousal or 0:.1f}/5",
        }[r]
        for r in reasons
    )
    alert = Alert(
        alert_id=alert_id("angry_customer", event.brand, event.customer_id, event.event_id),
        kind="angry_customer",
        severity=severity,
        source=event.source,
        brand=event.brand,
        subject=event.customer_id,
        event_time=t,
        window_start=t - rule.repeat_window,
        window_end=t,
        title=f"Angry {event.customer_tier or ''} customer {event.customer_id}".replace("  ", " "),
        message=(
            f"{'ESCALATED: ' if severity == 'critical' else ''}{what}, {event.priority} "
            f"priority{f', {event.product}' if event.product else ''}: \u201c{excerpt}\u201d"
        ),
        evidence={
            "ticket_id": event.event_id,
            "customer_id": event.customer_id,
            "customer_tier": event.customer_tier,
            "priority": event.priority,
            "product": event.product,
            "channel": event.channel,
            "reasons": reasons,
            "anger_score": round(anger, 4),
            "emotions": emotions,
            "sentiment": event.sentiment,
            "sentiment_score": round(event.sentiment_score, 4),
            "top_emotion": event.top_emotion,
            "labels": list(event.labels),
            "valence": event.valence,
            "arousal": arousal,
            "intensity": event.intensity,
            "excerpt": excerpt,
            "contacts_in_window": contacts,
            "triggers_in_escalation_window": len(state["triggers"]),
            "suppressed_since_last_alert": suppressed,
            "thresholds": {
                "min_anger": rule.min_anger,
                "repeat_contacts": rule.repeat_contacts,
                "escalate_after": rule.escalate_after,
                "min_arousal": rule.min_arousal,
                "critical_arousal": rule.critical_arousal,
            },
        },
        event_ids=(event.event_id,),
    )
    return state, [alert]


def _rank(priority: str) -> int:
    # Unknown priorities rank lowest rather than failing: the ticket was validated upstream.
    return PRIORITIES.index(priority) if priority in PRIORITIES else 0


def excerpt_of(event: ScoredEvent, limit: int) -> str:
    """Subject and text on one line, at most `limit` characters."""
    text = " ".join(f"{event.subject} {event.text}".split()) if event.subject else event.text
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _copy(state: CustomerState) -> CustomerState:
    return {**state, "contacts": [list(c) for c in state["contacts"]],
            "triggers": list(state["triggers"])}  # fmt: skip
