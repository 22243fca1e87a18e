"""`moodpipe sql`, `report` and `dashboards generate|publish`."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from pipeline.analytics.queries import QueryResult
from pipeline.cli.errors import CommandError, clickhouse, service
from pipeline.cli.output import console, print_result
from pipeline.settings import load_settings


def run_sql(query: str, given: dict[str, str]) -> QueryResult:
    """A saved query (by name) or ad-hoc SQL against the configured ClickHouse."""
    from pipeline.analytics.queries import prepare_query, run_query
    from pipeline.sink.clickhouse import connect

    try:
        sql, bound = prepare_query(query, given)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    settings = load_settings()
    with clickhouse(settings):
        client = connect(settings, settings.clickhouse_database)
        try:
            return run_query(client, sql, bound)
        finally:
            client.close()


@click.command("sql")
@click.argument("query", required=False)
@click.option("-p", "--param", "params", multiple=True, help="NAME=VALUE (repeatable)")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)  # fmt: skip
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="write to FILE")
@click.option("--list", "list_saved", is_flag=True, help="list the saved queries")
def sql_cmd(
    query: str | None, params: tuple[str, ...], fmt: str, out: str | None, list_saved: bool
) -> None:
    """Run a saved query (by name, schemas/queries/NAME.sql) or ad-hoc SQL.

    Parameters bind to {name:Type} placeholders server-side: moodpipe sql
    top_negative_posts -p brand='Acme Air' -p hours=6 --format csv -o worst.csv
    """
    from pipeline.analytics.queries import parse_params, saved_queries

    if list_saved or not query:
        table = Table("name", "parameters (default)", "what it shows")
        for q in saved_queries().values():
            args = ", ".join(f"{p.name} {p.type} = {p.default}" for p in q.params)
            table.add_row(q.name, args, q.description)
        console.print(table)
        return
    try:
        given = parse_params(params)
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    result = run_sql(query, given)
    if fmt == "table" and not out:
        print_result(result)
        return
    text = result.to_csv() if fmt == "csv" else result.to_json()
    if out:
        Path(out).write_text(text)
        console.print(f"{len(result.rows)} row(s) -> {out}")
    else:
        sys.stdout.write(text)


@click.command("report")
@click.option("--png", "png", required=True, type=click.Path(dir_okay=False), help="output")
@click.option("--hours", default=24.0, show_default=True, help="time range, ending at the "
              "latest data")  # fmt: skip
def report(png: str, hours: float) -> None:
    """Render mood over time, emotion mix, negative share and top emotions to a PNG."""
    from pipeline.analytics.report import load_report, render_png
    from pipeline.sink.clickhouse import connect

    settings = load_settings()
    with clickhouse(settings):
        client = connect(settings, settings.clickhouse_database)
        try:
            data = load_report(client, hours)
        except ValueError as exc:  # no data in the range: the user's to change
            raise CommandError(str(exc)) from exc
        finally:
            client.close()
    path = render_png(data, Path(png))
    console.print(f"wrote {path} ({path.stat().st_size:,} bytes)")


@click.group()
def dashboards() -> None:
    """Grafana dashboards as code: generate the JSON, publish it to Grafana."""


@dashboards.command("generate")
@click.option("--out", "out_dir", default="dashboards", show_default=True,
              type=click.Path(file_okay=False), help="folder for the JSON files")  # fmt: skip
def dashboards_generate(out_dir: str) -> None:
    """Write dashboards/*.json from pipeline/dashboards (commit the result)."""
    from pipeline.dashboards.generate import write_all

    for path in write_all(Path(out_dir)):
        console.print(f"wrote {path}")


@dashboards.command("publish")
@click.option("--dir", "src_dir", default="dashboards", show_default=True,
              type=click.Path(file_okay=False, exists=True))  # fmt: skip
def dashboards_publish(src_dir: str) -> None:
    """Upload dashboards/*.json to Grafana (MOODPIPE_GRAFANA_URL, MOODPIPE_GRAFANA_TOKEN)."""
    from pipeline.dashboards.publish import publish

    settings = load_settings()
    if not settings.grafana_url:
        raise CommandError("set MOODPIPE_GRAFANA_URL (and MOODPIPE_GRAFANA_TOKEN)")
    files = sorted(Path(src_dir).glob("*.json"))
    with service("Grafana", settings.grafana_url):
        urls = publish(settings.grafana_url, settings.grafana_token.get_secret_value(), files)
    for path, url in zip(files, urls, strict=True):
        console.print(f"published {path.name} -> {url}")


COMMANDS = [sql_cmd, report, dashboards]
