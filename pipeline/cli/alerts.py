"""`moodpipe alerts check|list`."""

from __future__ import annotations

import click

from pipeline.cli.analytics import run_sql
from pipeline.cli.errors import EXIT_SETUP, CommandError
from pipeline.cli.output import console
from pipeline.settings import load_settings


@click.group()
def alerts() -> None:
    """Alert rules and raised alerts."""


@alerts.command("check")
@click.argument("rules_file", required=False, type=click.Path(dir_okay=False))
def alerts_check(rules_file: str | None) -> None:
    """Validate a rules file (default: MOODPIPE_ALERT_RULES, else the packaged rules)."""
    from pipeline.alerts import RulesError, load_rules

    try:
        rules = load_rules(rules_file or load_settings().alert_rules)
    except RulesError as exc:
        raise CommandError(str(exc), EXIT_SETUP) from exc
    overrides = len(rules.file.overrides)
    console.print(f"{rules.path}: valid ({overrides} override{'s' * (overrides != 1)})")


@alerts.command("playbook")
@click.argument("playbook_file", required=False, type=click.Path(dir_okay=False))
@click.option(
    "--score", "score_tone", is_flag=True,
    help="also score every template with the model: each must read calm and caring",
)  # fmt: skip
def alerts_playbook(playbook_file: str | None, score_tone: bool) -> None:
    """Validate a reply playbook (default: MOODPIPE_REPLY_PLAYBOOK, else the packaged one)
    and list its entries."""
    from pipeline.alerts.playbook import PlaybookError, load_playbook

    try:
        playbook = load_playbook(playbook_file or load_settings().reply_playbook)
    except PlaybookError as exc:
        raise CommandError(str(exc), EXIT_SETUP) from exc
    f = playbook.file
    console.print(f"{playbook.path}: valid, version {f.version}, reviewed by {f.reviewed_by} "
                  f"on {f.reviewed_at}, {len(f.entries)} entries")  # fmt: skip
    for entry in f.entries:
        match = ", ".join(f"{k}={'/'.join(v)}" for k, v in entry.match.model_dump().items() if v)
        console.print(f"  {entry.id} ({match or 'any alert'}): {entry.tone}", highlight=False)
    if score_tone:
        from pipeline.alerts import load_rules
        from pipeline.model.reply_tone import template_tones
        from pipeline.scoring.routing import local_router

        settings = load_settings()
        tones = template_tones(playbook, local_router(settings), load_rules(settings.alert_rules))
        for t in tones:
            verdict = "calm" if t.calm else "NOT CALM"
            line = f"  {t.entry}: {verdict} (anger {t.anger:.3f}, {t.sentiment}, "
            console.print(f"{line}sentiment score {t.sentiment_score:+.2f})", highlight=False)
        failing = [t.entry for t in tones if not t.calm]
        if failing:
            raise CommandError(f"templates that do not read calm: {', '.join(failing)}")


@alerts.command("list")
@click.option("--hours", default=24, show_default=True, help="by event time, this far back")
@click.option("--kind", default="", help="only this kind, e.g. angry_customer")
@click.option("--brand", default="", help="only this brand")
@click.option("--limit", default=50, show_default=True)
def alerts_list(hours: int, kind: str, brand: str, limit: int) -> None:
    """Recent alerts from ClickHouse, newest first (the saved query alert_history)."""
    from rich.table import Table

    from pipeline.cli.output import console

    given = {"hours": str(hours), "kind": kind, "brand": brand, "limit": str(limit)}
    result = run_sql("alert_history", given)
    table = Table("event_time", "kind", "severity", "brand", "subject", "message", "why flagged",
                  "suggested reply")  # fmt: skip
    rows = result.as_dicts()
    for row in rows:
        why, reply = alert_extras(row.get("explanation") or "", row.get("reply") or "")
        table.add_row(str(row["event_time"]), row["kind"], row["severity"], row["brand"],
                      row["subject"], row["message"], why, reply)  # fmt: skip
    console.print(table)
    console.print(f"{len(rows)} row(s)")


def alert_extras(explanation: str, reply: str) -> tuple[str, str]:
    """'why flagged' and 'suggested reply' cells from the stored JSON columns."""
    import json

    from pipeline.alerts.models import Alert
    from pipeline.alerts.notify import why_flagged

    shell = Alert("", "angry_customer", "info", "", "", "", 0, 0, 0, "", "", {},
                  explanation=json.loads(explanation) if explanation else None)  # fmt: skip
    advice = json.loads(reply) if reply else None
    said = f"[{advice['tone']}] {advice['draft']}" if advice else ""
    return why_flagged(shell), said


COMMANDS = [alerts]
