"""Dashboards as code: no drift, macros as the plugin expands them, provisioning,
publishing through the Grafana HTTP API, and the compose file's consistency.

(Every panel's SQL runs against ClickHouse in tests/test_analytics.py.)
"""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from pipeline.dashboards.generate import DATASOURCE_TYPE, DATASOURCE_UID, render_all
from pipeline.dashboards.macros import expand_macros, interpolate
from pipeline.dashboards.panels import DASHBOARDS
from pipeline.dashboards.publish import publish
from pipeline.settings import Settings
from tests.helpers import free_port

ROOT = Path(__file__).parents[1]


def test_dashboard_json_is_exactly_what_the_generator_writes() -> None:
    rendered = render_all()
    on_disk = {p.name: p.read_text() for p in (ROOT / "dashboards").glob("*.json")}
    assert set(on_disk) == set(rendered), "run `moodpipe dashboards generate`"
    for name, text in rendered.items():
        assert on_disk[name] == text, (
            f"dashboards/{name} drifted: run `moodpipe dashboards generate`"
        )


def test_dashboards_use_only_their_own_variables_and_the_clickhouse_datasource() -> None:
    for spec in DASHBOARDS:
        board = json.loads(render_all()[f"{spec.uid[9:]}.json"])
        assert board["uid"] == spec.uid and len(board["panels"]) == len(spec.panels)
        declared = {v["name"] for v in board["templating"]["list"]}
        for panel in board["panels"]:
            target = panel["targets"][0]
            assert target["datasource"] == {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
            assert target["editorType"] == "sql" and target["rawSql"]
            used = set(re.findall(r"\$\{(\w+)(?::\w+)?\}", target["rawSql"]))
            assert used <= declared, (spec.uid, panel["title"], used - declared)
            assert (panel["type"] == "timeseries") == (target["format"] == 0)


def test_macros_expand_as_the_plugin_does() -> None:
    start = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    end = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    sql = (
        "SELECT $__timeInterval(minute) AS t FROM x WHERE $__timeFilter(minute) "
        "AND $__timeFilter_ms(created_at) AND brand IN (${brand:singlequote}) "
        "AND n > $__interval_s AND a BETWEEN $__fromTime AND $__toTime"
    )
    out = expand_macros(interpolate(sql, {"brand": ["Acme Air", "O'Brien"]}), start, end, 60)
    f, t = int(start.timestamp()), int(end.timestamp())
    assert out == (
        "SELECT toStartOfInterval(toDateTime(minute), INTERVAL 60 second) AS t FROM x "
        f"WHERE minute >= toDateTime({f}) AND minute <= toDateTime({t}) "
        f"AND created_at >= fromUnixTimestamp64Milli({f * 1000}) "
        f"AND created_at <= fromUnixTimestamp64Milli({t * 1000}) "
        "AND brand IN ('Acme Air','O\\'Brien') AND n > 60 "
        f"AND a BETWEEN toDateTime({f}) AND toDateTime({t})"
    )


def test_provisioning_matches_the_generated_dashboards() -> None:
    datasources = yaml.safe_load(
        (ROOT / "dashboards/provisioning/datasources/clickhouse.yaml").read_text()
    )
    (source,) = datasources["datasources"]
    assert (source["type"], source["uid"]) == (DATASOURCE_TYPE, DATASOURCE_UID)
    assert source["jsonData"]["defaultDatabase"] == Settings().clickhouse_database
    assert "password" not in source["jsonData"]  # secrets only in secureJsonData, from env
    assert source["secureJsonData"]["password"].startswith("${")
    providers = yaml.safe_load(
        (ROOT / "dashboards/provisioning/dashboards/moodpipe.yaml").read_text()
    )
    (provider,) = providers["providers"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./dashboards:{provider['options']['path']}:ro" in mounts


class FakeGrafana:
    """A real HTTP server answering the three Grafana API calls `publish` makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []
        grafana = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, code: int, body: dict[str, Any]) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length)) if length else None
                grafana.calls.append((self.command, self.path, dict(self.headers), payload))
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            def do_GET(self) -> None:
                self._answer(404, {"message": "folder not found"})

            def do_POST(self) -> None:
                if self.path == "/api/folders":
                    self._answer(200, {"uid": "moodpipe", "title": "moodpipe"})
                else:
                    self._answer(200, {"status": "success", "url": "/d/x/y"})

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_publish_uploads_every_dashboard_into_the_moodpipe_folder() -> None:
    grafana = FakeGrafana()
    try:
        files = sorted((ROOT / "dashboards").glob("*.json"))
        urls = publish(grafana.url, "glsa_token", files)
    finally:
        grafana.server.shutdown()
    assert urls == ["/d/x/y"] * len(files)
    methods = [(m, p) for m, p, _, _ in grafana.calls]
    assert methods[:2] == [("GET", "/api/folders/moodpipe"), ("POST", "/api/folders")]
    uploads = [c for c in grafana.calls if c[1] == "/api/dashboards/db"]
    assert {u[3]["dashboard"]["uid"] for u in uploads} == {d.uid for d in DASHBOARDS}
    assert all(u[3]["folderUid"] == "moodpipe" and u[3]["overwrite"] for u in uploads)
    assert all(c[2].get("Authorization") == "Bearer glsa_token" for c in grafana.calls)


def test_compose_file_is_consistent() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    every = compose["services"]
    # The default stack; optional profiles (the ClickHouse cluster) are checked below.
    services = {k: v for k, v in every.items() if not v.get("profiles")}
    assert set(services) == {"kafka", "triton", "clickhouse", "grafana", "init", "worker"}
    entrypoint = re.search(r'^ENTRYPOINT \["moodpipe"\]', (ROOT / "Dockerfile").read_text(), re.M)
    assert entrypoint and services["init"]["entrypoint"] == ["sh", "-c"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = set(re.findall(r"^FROM \S+ AS (\w+)", dockerfile, re.M))
    settings_fields = set(Settings.model_fields)
    for name, service in services.items():
        assert "image" in service or service["build"]["target"] in stages, name
        if name != "init":
            assert "healthcheck" in service, f"{name} has no health check"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
        for dep, condition in service.get("depends_on", {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            expected = "service_completed_successfully" if dep == "init" else "service_healthy"
            assert condition["condition"] == expected
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("."):
                assert (ROOT / host).exists(), f"{name} mounts missing {host}"
            else:
                assert host in compose["volumes"], f"{name} uses undeclared volume {host}"
        for key in service.get("environment", {}):
            if key.startswith("MOODPIPE_"):
                assert key.removeprefix("MOODPIPE_").lower() in settings_fields, key
    triton = services["triton"]
    assert "./triton_models:/models:ro" in triton["volumes"]
    assert "--model-config-name=gpu" in triton["command"]
    assert (ROOT / "triton_models/emotion_classifier/configs/gpu.pbtxt").exists()
    devices = triton["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    worker_env = services["worker"]["environment"]
    assert worker_env["MOODPIPE_KAFKA_URL"] == "kafka://kafka:9092"
    assert worker_env["MOODPIPE_TRITON_URL"] == "triton:8001"
    assert worker_env["MOODPIPE_CLICKHOUSE_URL"] == "http://clickhouse:8123"
    cluster = {k: v for k, v in every.items() if "cluster" in v.get("profiles", [])}
    assert set(cluster) == {"keeper", "ch-s1r1", "ch-s1r2", "ch-s2r1", "ch-s2r2", "init-cluster"}
    macros = {(v["environment"]["CLICKHOUSE_SHARD"], v["environment"]["CLICKHOUSE_REPLICA"])
              for k, v in cluster.items() if k.startswith("ch-")}  # fmt: skip
    assert macros == {("01", "ch-s1r1"), ("01", "ch-s1r2"), ("02", "ch-s2r1"), ("02", "ch-s2r2")}
    config = (ROOT / "schemas/clickhouse/cluster/cluster.xml").read_text()
    for node in ("ch-s1r1", "ch-s1r2", "ch-s2r1", "ch-s2r2"):
        assert f"<host>{node}</host>" in config
        mounts = cluster[node]["volumes"]
        assert any(m.startswith("./schemas/clickhouse/cluster/cluster.xml:") for m in mounts)
        assert cluster[node]["depends_on"] == {"keeper": {"condition": "service_healthy"}}
        assert all(p.startswith("127.0.0.1:") for p in cluster[node].get("ports", []))
    assert cluster["init-cluster"]["command"] == ["migrate", "--cluster", "moodpipe_cluster"]
    assert set(cluster["init-cluster"]["depends_on"]) == {
        "ch-s1r1",
        "ch-s1r2",
        "ch-s2r1",
        "ch-s2r2",
    }
    for service in cluster.values():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            assert (ROOT / host).exists() if host.startswith(".") else host in compose["volumes"]
    # No secret is written into the file: they all come from the environment.
    text = (ROOT / "docker-compose.yml").read_text()
    for secret in ("PASSWORD", "TOKEN", "WEBHOOK_URL"):
        for line in text.splitlines():
            if secret in line and ":" in line and not line.strip().startswith("#"):
                assert "${" in line, line
