"""Brand mood and volume spikes: tumbling event-time windows against an EWMA baseline.

Per (source, brand) the state holds the open windows' counts, the baselines of
negative share and volume (exponentially weighted mean and variance of earlier
windows) and whether a spike is in progress. A window closes when the brand's event
time passes its end + grace; closing it judges it against the baseline:

- `brand_mood_spike`: negative share > mean + k sigma, with at least `min_volume`
  events, after `warmup_windows` of baseline; `brand_mood_recovered` once a window
  is back below mean + recover_k sigma (hysteresis, so one spike pages once).
- `brand_volume_spike`: volume > mean + k sigma (sigma at least sqrt(mean), the
  Poisson noise of a count).

Windows that spike do not feed the baseline, so a long spike does not become normal.
Windows are judged on event time, not wall time, so a replay gives the same alerts.
Faust's own windowed tables close windows on a wall-clock timer outside the stream
(and cannot write tables there), which is why windows are kept in a plain table here.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.alerts.models import Alert, ScoredEvent, alert_id, format_time
from pipeline.alerts.rules import BrandSpikeRule

BrandState = dict[str, Any]

# After a silence longer than this many windows, the empty windows are skipped rather
# than folded one by one into the volume baseline.
MAX_EMPTY_WINDOWS = 288


def new_brand_state() -> BrandState:
    return {
        "watermark": None,  # latest event time seen
        "closed_through": None,  # windows ending at or before this are closed
        # str(window start) -> {"volume", "negative", "ekman": {}, "examples": [[id, excerpt,
        # lang]]} (examples from before explanations have no lang)
        "open": {},
        "share": {"n": 0, "mean": 0.0, "var": 0.0},
        "volume": {"n": 0, "mean": 0.0, "var": 0.0},
        "in_spike": False,
        "in_volume_spike": False,
        "late": 0,  # events that arrived after their window closed
    }


def observe_event(
    state: BrandState | None, event: ScoredEvent, rule: BrandSpikeRule
) -> tuple[BrandState, list[Alert]]:
    state = _copy(state) if state is not None else new_brand_state()
    t = event.created_at
    start = math.floor(t / rule.window) * rule.window
    if state["closed_through"] is not None and start + rule.window <= state["closed_through"]:
        state["late"] += 1
        return state, []
    window = state["open"].setdefault(
        _key(start), {"volume": 0, "negative": 0, "ekman": {}, "examples": []}
    )
    window["volume"] += 1
    window["ekman"][event.ekman] = window["ekman"].get(event.ekman, 0) + 1
    if event.negative:
        window["negative"] += 1
        if len(window["examples"]) < rule.examples:
            window["examples"].append([event.event_id, _excerpt(event.text), event.lang])
    state["watermark"] = t if state["watermark"] is None else max(state["watermark"], t)
    return state, close_windows(state, event, rule)


def close_windows(state: BrandState, event: ScoredEvent, rule: BrandSpikeRule) -> list[Alert]:
    """Close every window whose end + grace the watermark has passed, oldest first."""
    alerts: list[Alert] = []
    w = rule.window
    while state["open"] or state["closed_through"] is not None:
        earliest_open = min((float(k) for k in state["open"]), default=None)
        start = state["closed_through"]
        silent_too_long = (
            start is not None
            and earliest_open is not None
            and earliest_open - start > MAX_EMPTY_WINDOWS * w
        )
        if start is None or silent_too_long:
            if earliest_open is None:
                break
            start = earliest_open  # the first window, or back after a long silence
        if start + w + rule.grace > state["watermark"]:
            break
        counts = state["open"].pop(_key(start), None)
        alerts.extend(_judge(state, start, counts, event, rule))
        state["closed_through"] = start + w
    return alerts


def _judge(
    state: BrandState,
    start: float,
    counts: dict[str, Any] | None,
    event: ScoredEvent,
    rule: BrandSpikeRule,
) -> list[Alert]:
    end = start + rule.window
    volume = counts["volume"] if counts else 0
    negative = counts["negative"] if counts else 0
    alerts: list[Alert] = []

    def alert(kind: str, severity: str, title: str, message: str, extra: dict[str, Any]) -> None:
        alerts.append(
            Alert(
                alert_id=alert_id(kind, event.source, event.brand, start),
                kind=kind,  # type: ignore[arg-type]
                severity=severity,  # type: ignore[arg-type]
                source=event.source,
                brand=event.brand,
                subject=event.brand,
                event_time=end,
                window_start=start,
                window_end=end,
                title=title,
                message=message,
                evidence={
                    "volume": volume,
                    "negative": negative,
                    "ekman": dict(sorted((counts or {}).get("ekman", {}).items())),
                    "examples": [
                        {"event_id": x[0], "excerpt": x[1], "lang": x[2] if len(x) > 2 else ""}
                        for x in (counts or {}).get("examples", [])
                    ],
                    "window_seconds": rule.window,
                    **extra,
                },
                event_ids=tuple(x[0] for x in (counts or {}).get("examples", [])),
            )
        )

    where = f"{event.brand or '(no brand)'} {event.source}s"
    at = format_time(start)[:16].replace("T", " ")
    share_base = state["share"]
    if volume >= rule.min_volume:
        share = negative / volume
        std = max(math.sqrt(share_base["var"]), rule.min_share_std)
        z = (share - share_base["mean"]) / std
        judged = share_base["n"] >= rule.warmup_windows
        facts = {
            "negative_share": round(share, 4),
            "baseline_mean": round(share_base["mean"], 4),
            "baseline_std": round(std, 4),
            "z": round(z, 2),
            "k_sigma": rule.negative_k_sigma,
            "baseline_windows": share_base["n"],
        }
        if judged and not state["in_spike"] and z >= rule.negative_k_sigma:
            state["in_spike"] = True
            alert(
                "brand_mood_spike", "critical" if z >= 2 * rule.negative_k_sigma else "warning",
                f"Negative mood spike: {where}",
                f"{share:.0%} negative of {volume} in the window from {at} UTC "
                f"(baseline {share_base['mean']:.0%} \u00b1 {std:.0%}, z={z:.1f})",
                facts,
            )  # fmt: skip
        elif state["in_spike"] and z < rule.recover_k_sigma:
            state["in_spike"] = False
            alert(
                "brand_mood_recovered", "info", f"Mood recovered: {where}",
                f"{share:.0%} negative of {volume} in the window from {at} UTC, back within "
                f"the baseline {share_base['mean']:.0%} \u00b1 {std:.0%}",
                facts,
            )  # fmt: skip
        if not state["in_spike"]:
            _ewma(share_base, share, rule.baseline_alpha)

    vol_base = state["volume"]
    std_v = max(math.sqrt(vol_base["var"]), math.sqrt(max(vol_base["mean"], 1.0)))
    z_v = (volume - vol_base["mean"]) / std_v
    if (
        vol_base["n"] >= rule.warmup_windows
        and not state["in_volume_spike"]
        and volume >= rule.min_spike_volume
        and z_v >= rule.volume_k_sigma
    ):
        state["in_volume_spike"] = True
        alert(
            "brand_volume_spike", "warning", f"Volume spike: {where}",
            f"{volume} events in the window from {at} UTC "
            f"(baseline {vol_base['mean']:.1f} \u00b1 {std_v:.1f}, z={z_v:.1f})",
            {"baseline_mean": round(vol_base["mean"], 2), "baseline_std": round(std_v, 2),
             "z": round(z_v, 2), "k_sigma": rule.volume_k_sigma},
        )  # fmt: skip
    elif state["in_volume_spike"] and z_v < rule.recover_k_sigma:
        state["in_volume_spike"] = False
    if not state["in_volume_spike"]:
        _ewma(vol_base, float(volume), rule.baseline_alpha)
    return alerts


def _ewma(baseline: dict[str, Any], x: float, alpha: float) -> None:
    if baseline["n"] == 0:
        baseline.update(n=1, mean=x, var=0.0)
        return
    delta = x - baseline["mean"]
    baseline["mean"] += alpha * delta
    baseline["var"] = (1 - alpha) * (baseline["var"] + alpha * delta * delta)
    baseline["n"] += 1


def _key(start: float) -> str:
    return repr(float(start))


def _excerpt(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _copy(state: BrandState) -> BrandState:
    return {
        **state,
        "open": {
            k: {**v, "ekman": dict(v["ekman"]), "examples": [list(x) for x in v["examples"]]}
            for k, v in state["open"].items()
        },
        "share": dict(state["share"]),
        "volume": dict(state["volume"]),
    }
