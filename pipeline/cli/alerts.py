"""`moodpipe alerts check|list`."""

from __future__ import annotations

import click

from pipeline.cli.analytics import run_sql
from pipeline.cli.errors import EXIT_SETUP, CommandError
from pipeline.cli.output import console, print_result
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


@alerts.command("list")
@click.option("--hours", default=24, show_default=True, help="by event time, this far back")
@click.option("--kind", default="", help="only this kind, e.g. angry_customer")
@click.option("--brand", default="", help="only this brand")
@click.option("--limit", default=50, show_default=True)
def alerts_list(hours: int, kind: str, brand: str, limit: int) -> None:
    """Recent alerts from ClickHouse, newest first (the saved query alert_history)."""
    given = {"hours": str(hours), "kind": kind, "brand": brand, "limit": str(limit)}
    result = run_sql("alert_history", given)
    print_result(result, ("event_time", "kind", "severity", "brand", "subject", "message"))


COMMANDS = [alerts]
