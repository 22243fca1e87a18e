"""`moodpipe report --png FILE`: the main dashboard panels as one picture, no Grafana.

Reads the rollups (mood_minute) like the dashboards do, so it is cheap at any volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.emotions import EKMAN_GROUPS, LABELS

EKMAN_COLOURS = {
    "joy": "#f2b701", "anger": "#e73f3f", "sadness": "#3969ac", "fear": "#7f3c8d",
    "surprise": "#11a579", "disgust": "#80ba5a", "neutral": "#b3b3b3",
}  # fmt: skip


@dataclass
class ReportData:
    start: datetime
    end: datetime
    bucket_minutes: int
    mood: list[tuple[datetime, str, float]]  # time, brand, mood index
    mix: list[tuple[str, dict[str, int]]]  # brand, Ekman group -> events
    negative: list[tuple[str, float, int]]  # brand, negative share, events
    emotions: list[tuple[str, float]]  # emotion, mean probability (top 10, no neutral)


def load_report(client: Any, hours: float, end: datetime | None = None) -> ReportData:
    """The report's numbers for the `hours` before `end` (default: the latest data)."""
    if end is None:
        latest = client.query("SELECT max(minute) FROM mood_minute").result_rows[0][0]
        if latest is None or latest.year < 2000:
            raise ValueError("no scored events in ClickHouse yet (mood_minute is empty)")
        end = latest + timedelta(minutes=1)
    start = end - timedelta(hours=hours)
    bucket = max(1, round(hours * 60 / 48))  # about 48 points: a readable trend
    window = {"start": start, "end": end}
    where = "minute >= {start:DateTime} AND minute < {end:DateTime}"
    mood = client.query(
        f"SELECT toStartOfInterval(minute, INTERVAL {bucket} MINUTE) AS t, brand, "
        f"sum(sentiment_score_sum) / sum(events) FROM mood_minute WHERE {where} "
        "GROUP BY t, brand ORDER BY t, brand",
        parameters=window,
    ).result_rows
    groups = list(EKMAN_GROUPS)
    mix_rows = client.query(
        "SELECT brand, " + ", ".join(f"sum(ekman_{g})" for g in groups)
        + f" FROM mood_minute WHERE {where} GROUP BY brand ORDER BY brand",
        parameters=window,
    ).result_rows  # fmt: skip
    negative = client.query(
        f"SELECT brand, sum(negative) / sum(events), sum(events) FROM mood_minute "
        f"WHERE {where} GROUP BY brand ORDER BY brand",
        parameters=window,
    ).result_rows
    totals = client.query(
        "SELECT sum(events), " + ", ".join(f"sum({label})" for label in LABELS)
        + f" FROM mood_minute WHERE {where}",
        parameters=window,
    ).result_rows[0]  # fmt: skip
    events = totals[0] or 1
    means = sorted(
        ((label, float(s or 0) / events) for label, s in zip(LABELS, totals[1:], strict=True)
         if label != "neutral"),
        key=lambda x: -x[1],
    )[:10]  # fmt: skip
    return ReportData(
        start, end, bucket,
        [(t, b, float(m)) for t, b, m in mood],
        [(row[0], dict(zip(groups, map(int, row[1:]), strict=True))) for row in mix_rows],
        [(b, float(s), int(n)) for b, s, n in negative],
        means,
    )  # fmt: skip


def render_png(data: ReportData, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(14, 9), constrained_layout=True)
    fig.suptitle(
        f"moodpipe report  {data.start:%Y-%m-%d %H:%M} to {data.end:%Y-%m-%d %H:%M} UTC",
        fontsize=14,
    )

    ax = axes[0][0]
    gap = timedelta(minutes=2 * data.bucket_minutes)
    for brand in sorted({b for _, b, _ in data.mood}):
        times: list[Any] = []
        values: list[float] = []
        for t, b, m in data.mood:
            if b != brand:
                continue
            if times and t - times[-1] > gap:  # no data in between: break the line
                times.append(times[-1] + gap / 2)
                values.append(float("nan"))
            times.append(t)
            values.append(m)
        ax.plot(times, values, label=brand or "(none)", marker=".", markersize=3)
    ax.axhline(0, color="#888888", linewidth=0.8)
    ax.set_title(f"Mood index per {data.bucket_minutes} min (positive - negative)")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelrotation=30)

    ax = axes[0][1]
    brands = [b or "(none)" for b, _ in data.mix]
    bottoms = [0.0] * len(data.mix)
    for group in EKMAN_GROUPS:
        shares = [m[group] / max(sum(m.values()), 1) for _, m in data.mix]
        ax.bar(brands, shares, bottom=bottoms, label=group, color=EKMAN_COLOURS[group])
        bottoms = [b + s for b, s in zip(bottoms, shares, strict=True)]
    ax.set_title("Emotion mix (Ekman groups, share of events)")
    ax.legend(fontsize=8, ncol=7, loc="upper center", bbox_to_anchor=(0.5, -0.06))

    ax = axes[1][0]
    negative = sorted(data.negative, key=lambda x: x[1])
    ax.barh([b or "(none)" for b, _, _ in negative], [s for _, s, _ in negative],
            color="#e73f3f")  # fmt: skip
    for i, (_, share, n) in enumerate(negative):
        ax.text(share, i, f" {share:.0%} of {n}", va="center", fontsize=8)
    ax.set_title("Negative share by brand")
    ax.set_xlim(0, max([s for _, s, _ in negative] + [0.1]) * 1.3)

    ax = axes[1][1]
    ax.barh([e for e, _ in reversed(data.emotions)], [p for _, p in reversed(data.emotions)],
            color="#3969ac")  # fmt: skip
    ax.set_title("Strongest emotions (mean probability, without neutral)")

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
