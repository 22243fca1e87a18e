"""`thread_worsening` and `thread_recovered`: a support thread's mood over its turns.

State per (brand, thread) is a small JSON dict in the alert agent's Faust table (a
changelog topic: it survives restarts and moves with its partition), like the
customer state. Functions here are pure: old state and a turn in, new state and
alerts out; the agent writes the state back only after the alerts are published.

Mood is a turn's sentiment score (-1 .. 1). Turns are kept in `created_at` order:
a turn that arrives out of order, up to `grace` older than the thread's latest, is
placed where it belongs and the thread is judged again on the ordered turns; an
older one is counted as late and left out (as brand windows do). Judging is on event
time only, so a replay raises the same alerts.

- worsening: over the latest `turns` customer turns, the mood fell by `drop` or more
  from the best to the latest and the latest is at most `negative_below`; or the
  customer turned angry right after an agent or bot reply (`angry_after_reply`).
- critical: after the warning, a customer turn that is worse again: its mood
  `critical_drop` below the mood at the warning, or its anger score `critical_drop`
  above the anger at the warning (once per worsening). Both, because sentiment
  saturates: a disappointed and a furious turn both score about -0.9, and only the
  anger tells them apart.
- recovered: a worsened thread whose latest customer mood is back to `recover_above`.
"""

from __future__ import annotations

import bisect
from typing import Any

from pipeline.alerts.customers import anger_score, excerpt_of
from pipeline.alerts.models import Alert, ScoredEvent, Severity, alert_id
from pipeline.alerts.rules import AngryCustomerRule, ThreadRule

ThreadState = dict[str, Any]
REPLY_ROLES = ("agent", "bot")
# A turn in the state: [created_at, event_id, role, mood, anger].
AT, EVENT, ROLE, MOOD, ANGER = range(5)


def new_thread_state() -> ThreadState:
    return {
        "turns": [],  # the latest max_turns turns, in (created_at, event_id) order
        "customer_turns": 0,  # all customer turns, including those no longer kept
        "all_turns": 0,
        "first": None,  # the customer's first turn: {"event_id", "at", "mood"}
        "worst": None,  # the customer's worst turn: {"event_id", "at", "mood"}
        "current": None,  # latest customer turn: {"event_id", "at", "mood", "anger", "excerpt"}
        "last_reply": None,  # latest agent/bot turn: {"event_id", "at", "role", "mood", ...}
        "worsened": False,
        "critical": False,  # a critical alert was raised in this worsening
        "alert_mood": None,  # the mood at the last worsening alert
        "alert_anger": None,  # and its anger score
        "last_alert": None,  # created_at of the turn of the last worsening alert
        "suppressed": 0,  # worsenings held back by the cooldown since the last alert
        "late": 0,  # turns too old to place
        "meta": {},  # customer_id, tier, product, channel of the latest customer turn
    }


def observe_turn(
    state: ThreadState | None, event: ScoredEvent, rule: ThreadRule, anger: AngryCustomerRule
) -> tuple[ThreadState, list[Alert]]:
    state = _copy(state) if state is not None else new_thread_state()
    turns: list[list[Any]] = state["turns"]
    if any(turn[EVENT] == event.event_id for turn in turns):
        return state, []  # the same turn again (re-delivered or re-scored)
    t = event.created_at
    if turns and t < turns[-1][AT] - rule.grace:
        state["late"] += 1
        return state, []
    role = event.author_role or "customer"
    turn = [t, event.event_id, role, round(event.sentiment_score, 4),
            round(anger_score(event, anger), 4)]  # fmt: skip
    bisect.insort(turns, turn, key=lambda x: (x[AT], x[EVENT]))
    del turns[: max(0, len(turns) - rule.max_turns)]
    state["all_turns"] += 1
    if role in REPLY_ROLES:
        last = state["last_reply"]
        if last is None or t >= last["at"]:
            state["last_reply"] = {
                "event_id": event.event_id, "at": t, "role": role, "mood": turn[MOOD],
                "sentiment": event.sentiment, "top_emotion": event.top_emotion,
                "excerpt": excerpt_of(event, 160),
            }  # fmt: skip
        current = state["current"]
        if current is not None and t < current["at"]:
            # A reply placed before the customer's latest turn: judge that turn again,
            # now that it is known to follow a reply.
            return state, _judge(state, event, rule, anger)
        return state, []

    state["customer_turns"] += 1
    mark = {"event_id": event.event_id, "at": t, "mood": turn[MOOD]}
    if state["first"] is None or t < state["first"]["at"]:
        state["first"] = mark
    if state["worst"] is None or turn[MOOD] < state["worst"]["mood"]:
        state["worst"] = mark
    current = state["current"]
    if current is None or t >= current["at"]:
        state["current"] = {**mark, "anger": turn[ANGER], "excerpt": excerpt_of(event, 280)}
        state["meta"] = {"customer_id": event.customer_id, "customer_tier": event.customer_tier,
                         "product": event.product, "channel": event.channel,
                         "priority": event.priority}  # fmt: skip
    return state, _judge(state, event, rule, anger)


def _judge(
    state: ThreadState, event: ScoredEvent, rule: ThreadRule, anger: AngryCustomerRule
) -> list[Alert]:
    """Judge the thread at its latest customer turn, on the turns in created_at order."""
    turns = state["turns"]
    customer = [x for x in turns if x[ROLE] not in REPLY_ROLES]
    latest = customer[-1]
    window = customer[-rule.turns :]
    reasons: list[str] = []
    if len(window) >= 2:
        best = max(x[MOOD] for x in window[:-1])
        if best - latest[MOOD] >= rule.drop and latest[MOOD] <= rule.negative_below:
            reasons.append("mood_falling")
    before = turns[turns.index(latest) - 1] if turns.index(latest) > 0 else None
    previous_customer = customer[-2] if len(customer) >= 2 else None
    if (
        rule.angry_after_reply
        and before is not None
        and before[ROLE] in REPLY_ROLES
        and latest[ANGER] >= anger.min_anger
        and latest[MOOD] < 0
        and (previous_customer is None or previous_customer[ANGER] < anger.min_anger)
    ):
        reasons.append("angry_after_reply")
    at = latest[AT]

    if state["worsened"]:
        if state["last_alert"] is not None and at <= state["last_alert"]:
            return []  # a turn placed before the alert's turn: judged already
        if latest[MOOD] >= rule.recover_above:
            state.update(worsened=False, critical=False)
            return [_alert(state, event, rule, "thread_recovered", "info", ["recovered"], latest)]
        worse = latest[MOOD] <= state["alert_mood"] - rule.critical_drop or (
            latest[ANGER] >= (state.get("alert_anger") or 0.0) + rule.critical_drop
            and latest[MOOD] <= rule.negative_below
        )
        if not state["critical"] and worse:
            state.update(critical=True, alert_mood=latest[MOOD], alert_anger=latest[ANGER],
                         last_alert=at, suppressed=0)  # fmt: skip
            return [_alert(state, event, rule, "thread_worsening", "critical",
                           ["still_falling", *reasons], latest)]  # fmt: skip
        return []
    if not reasons:
        return []
    last = state["last_alert"]
    if last is not None and abs(at - last) < rule.cooldown:
        state["suppressed"] += 1
        return []
    suppressed = state["suppressed"]
    state.update(worsened=True, critical=False, alert_mood=latest[MOOD],
                 alert_anger=latest[ANGER], last_alert=at, suppressed=0)  # fmt: skip
    return [_alert(state, event, rule, "thread_worsening", "warning", reasons, latest,
                   suppressed)]  # fmt: skip


def trend(moods: list[float]) -> float:
    """Least-squares slope of the moods per customer turn (0 for fewer than two)."""
    n = len(moods)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(moods) / n
    num = sum((i - mean_x) * (m - mean_y) for i, m in enumerate(moods))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def _alert(
    state: ThreadState,
    event: ScoredEvent,
    rule: ThreadRule,
    kind: str,
    severity: Severity,
    reasons: list[str],
    latest: list[Any],
    suppressed: int = 0,
) -> Alert:
    thread = event.thread_id
    meta = state["meta"]
    customer = [x for x in state["turns"] if x[ROLE] not in REPLY_ROLES]
    moods = [x[MOOD] for x in customer]
    first, current, worst = state["first"], state["current"], state["worst"]
    reply = state["last_reply"]
    who = f"{meta.get('customer_tier') or ''} customer {meta.get('customer_id') or ''}".strip()
    excerpt = current["excerpt"] if current["event_id"] == latest[EVENT] else ""
    moves = " \u2192 ".join(f"{m:+.2f}" for m in moods[-rule.turns :])
    if kind == "thread_recovered":
        title = f"Thread recovered: {thread}"
        message = f"{who}: mood back to {latest[MOOD]:+.2f} (worst {worst['mood']:+.2f})"
    else:
        what = {
            "mood_falling": f"mood {moves}",
            "angry_after_reply": "angry right after our reply",
            "still_falling": f"still falling: {latest[MOOD]:+.2f}",
        }
        title = f"{'ESCALATED: ' if severity == 'critical' else ''}Thread getting worse: {thread}"
        message = (
            f"{who}, {meta.get('product') or 'no product'}: "
            + ", ".join(what[r] for r in reasons)
            + (f": \u201c{excerpt}\u201d" if excerpt else "")
        )
    return Alert(
        alert_id=alert_id(kind, event.brand, thread, latest[EVENT]),
        kind=kind,  # type: ignore[arg-type]
        severity=severity,
        source="ticket",
        brand=event.brand,
        subject=thread,
        event_time=latest[AT],
        window_start=first["at"] if first else latest[AT],
        window_end=latest[AT],
        title=title,
        message=message,
        evidence={
            "thread_id": thread,
            "ticket_id": latest[EVENT],
            **meta,
            "reasons": reasons,
            "first_mood": first["mood"] if first else None,
            "current_mood": latest[MOOD],
            "worst_mood": worst["mood"] if worst else None,
            "moods": moods[-rule.turns :],
            "trend_per_turn": round(trend(moods), 4),
            "turns": state["all_turns"],
            "customer_turns": state["customer_turns"],
            "anger_score": latest[ANGER],
            "last_reply": reply,
            "excerpt": excerpt,
            "late_turns": state["late"],
            "suppressed_since_last_alert": suppressed,
            "thresholds": {
                "turns": rule.turns,
                "drop": rule.drop,
                "negative_below": rule.negative_below,
                "critical_drop": rule.critical_drop,
                "recover_above": rule.recover_above,
            },
        },
        event_ids=(latest[EVENT], *([reply["event_id"]] if reply else [])),
    )


def _copy(state: ThreadState) -> ThreadState:
    return {**state, "turns": [list(x) for x in state["turns"]]}
