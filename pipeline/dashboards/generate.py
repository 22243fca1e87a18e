"""Dashboards as code: the panel specs built with grafana-foundation-sdk (Grafana 11).

`moodpipe dashboards generate` writes dashboards/*.json; a test checks the files are
exactly what this produces, so the JSON in the repository never drifts from the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    barchart,
    dashboard,
    piechart,
    table,
    timeseries,
    xychart,
)
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_model

from pipeline.dashboards.panels import (
    ANNOTATION_SQL,
    DASHBOARDS,
    VARIABLE_QUERIES,
    DashboardSpec,
    PanelSpec,
)

DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_UID = "moodpipe-clickhouse"
DATASOURCE = dashboard_model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class ClickHouseQuery(cogvariants.Dataquery):
    """A target of the ClickHouse plugin: raw SQL from the SQL editor.

    The SDK has no ClickHouse query type; this emits the plugin's own target fields.
    """

    def __init__(self, ref_id: str, sql: str, table_format: bool) -> None:
        self.ref_id = ref_id
        self.sql = sql
        self.table_format = table_format

    def to_json(self) -> dict[str, Any]:
        return {
            "refId": self.ref_id,
            "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
            "editorType": "sql",
            "queryType": "table" if self.table_format else "timeseries",
            "format": 1 if self.table_format else 0,
            "rawSql": self.sql,
        }


class ClickHouseQueryBuilder(Builder[ClickHouseQuery]):
    def __init__(self, ref_id: str, sql: str, table_format: bool) -> None:
        self._query = ClickHouseQuery(ref_id, sql, table_format)

    def build(self) -> ClickHouseQuery:
        return self._query


# Each builder class has the same fluent panel API (title, datasource, span, ...).
_PANEL_BUILDERS: dict[str, Any] = {
    "timeseries": timeseries.Panel,
    "table": table.Panel,
    "barchart": barchart.Panel,
    "piechart": piechart.Panel,
    "xychart": xychart.Panel,
}


def _panel(spec: PanelSpec) -> Builder[Any]:
    panel = (
        _PANEL_BUILDERS[spec.kind]()
        .title(spec.title)
        .datasource(DATASOURCE)
        .span(spec.width)
        .height(spec.height)
        .with_target(ClickHouseQueryBuilder("A", spec.sql, spec.kind != "timeseries"))
    )
    if spec.description:
        panel = panel.description(spec.description)
    if spec.unit:
        panel = panel.unit(spec.unit)
    return panel


def _variable(name: str) -> Builder[Any]:
    label, query = VARIABLE_QUERIES[name]
    variable: Any
    if query.startswith("SELECT"):
        variable = (
            dashboard.QueryVariable(name)
            .label(label)
            .datasource(DATASOURCE)
            .query(query)
            .refresh(dashboard_model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(dashboard_model.VariableSort.ALPHABETICAL_ASC)
        )
    else:
        variable = dashboard.CustomVariable(name).label(label).values(query)
    return variable.multi(True).include_all(True)


def build(spec: DashboardSpec) -> dict[str, Any]:
    board = (
        dashboard.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(list(spec.tags))
        .time("now-24h", "now")
        .refresh("30s")
        .timezone("utc")
        .annotation(
            dashboard.AnnotationQuery()
            .name("moodpipe alerts (Grafana annotations)")
            .datasource(dashboard_model.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True)
            .icon_color("red")
            .target(dashboard.AnnotationTarget().type("tags").tags(["moodpipe"]).match_any(True))
        )
    )
    if "brand" in spec.variables:
        board = board.annotation(
            dashboard.AnnotationQuery()
            .name("moodpipe alerts (ClickHouse)")
            .datasource(DATASOURCE)
            .enable(False)  # the same alerts as above; for Grafanas without the notifier
            .icon_color("orange")
        )
    for name in spec.variables:
        board = board.with_variable(_variable(name))
    for panel in spec.panels:
        board = board.with_panel(_panel(panel))
    data = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    for annotation in data.get("annotations", {}).get("list", []):
        if annotation.get("name") == "moodpipe alerts (ClickHouse)":
            # The SDK's annotation target is Grafana's own shape; the plugin reads these.
            annotation["target"] = ClickHouseQuery("Anno", ANNOTATION_SQL, True).to_json()
    return data


def render_all() -> dict[str, str]:
    """File name -> JSON text for every dashboard."""
    return {
        f"{spec.uid.removeprefix('moodpipe-')}.json": json.dumps(build(spec), indent=2) + "\n"
        for spec in DASHBOARDS
    }


def write_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = out_dir / name
        path.write_text(text)
        written.append(path)
    return written
