"""Authenticated and encrypted connections, on the real broker and ClickHouse engine.

- Kafka: the session runtime's broker has a SASL_PLAINTEXT (SCRAM) listener next to
  its PLAINTEXT one; a namespace pointed at it runs every client through SCRAM
  (topic creation, producing, the worker, the harness's reads).
- ClickHouse: the local front (the real engine behind ClickHouse's HTTP protocol)
  served over https with a password; clickhouse-connect talks to it unchanged.
- Secrets: every secret setting set to a recognisable value, a run with an outage
  and bad records, then no log line, dead letter, alert, notification or exception
  text may contain one.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.local.runtime import LocalRuntime
from pipeline.settings import Settings
from pipeline.sink.clickhouse import ClickHouseSink, connect
from pipeline.testing.plugin import TEST_KAFKA_PASSWORD, TEST_KAFKA_USER
from pipeline.traffic import bad_records, produce, sample_posts
from tests.helpers import Namespace, free_port, wait_until

pytestmark = pytest.mark.services


def _sasl(runtime: LocalRuntime, password: str = TEST_KAFKA_PASSWORD, **more: str) -> dict:
    return {
        "kafka_url": f"kafka://127.0.0.1:{runtime.settings.local_kafka_sasl_port}",
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-256",
        "kafka_username": TEST_KAFKA_USER,
        "kafka_password": password,
        **more,
    }


def test_the_pipeline_runs_through_a_scram_listener(tmp_path: Path, runtime: LocalRuntime) -> None:
    with Namespace.create(tmp_path, **_sasl(runtime)) as ns:
        assert ns.settings.kafka.uses_sasl
        posts = sample_posts(40, run_id="sasl", seed=5)
        asyncio.run(produce(ns.settings.kafka, ns.settings.posts_topic, posts))
        ns.start_worker()
        wait_until(lambda: ns.landed() >= len(posts), 180, "the posts to land")
        ns.wait_caught_up(120)  # offsets committed through the SASL listener too
        log = next(tmp_path.glob("worker-*.log")).read_text(errors="replace")
        assert f"Authenticated as {TEST_KAFKA_USER} via SCRAM-SHA-256" in log
        assert TEST_KAFKA_PASSWORD not in log


def test_a_wrong_kafka_password_fails_fast_with_a_clear_message(runtime: LocalRuntime) -> None:
    wrong = "not-the-password-7731"
    env = {
        **os.environ,
        **{f"MOODPIPE_{k.upper()}": v for k, v in _sasl(runtime, password=wrong).items()},
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "worker"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    took = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-2000:]
    assert took < 60, f"took {took:.0f}s to give up"
    assert "refused this client" in output and TEST_KAFKA_USER in output
    assert "SaslAuthenticationFailed" in output
    assert wrong not in output


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_clickhouse_over_https_with_a_password(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port, password = free_port(), "ch-https-pw-0f3b"
    front = subprocess.Popen(
        [sys.executable, "-m", "pipeline.local.clickhouse_server", "--path",
         str(tmp_path / "ch"), "--port", str(port), "--tls-cert", str(cert),
         "--tls-key", str(key)],
        env={**os.environ, "MOODPIPE_CLICKHOUSE_PASSWORD": password, "TZ": "UTC"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"https://127.0.0.1:{port}"

        def settings(**kw: str) -> Settings:
            return Settings(
                clickhouse_url=url, clickhouse_database="sec", clickhouse_ca_file=cert, **kw
            )

        def up() -> bool:
            try:
                connect(settings(clickhouse_password=password)).command("SELECT 1")
                return True
            except Exception:  # noqa: BLE001 - not listening yet
                return False

        wait_until(up, 60, "the https front")
        good = settings(clickhouse_password=password)
        assert "001_scored_events.sql" in ClickHouseSink(good).migrate()
        client = connect(good, "sec")
        assert client.query("SELECT count() FROM scored_events").result_rows == [(0,)]
        for wrong in ("", "wrong-pw-9"):
            with pytest.raises(Exception) as refused:
                connect(settings(clickhouse_password=wrong), "sec").command("SELECT 1")
            assert "516" in str(refused.value) or "Authentication failed" in str(refused.value)
            assert password not in str(refused.value)
        # Without the CA, the self-signed certificate is refused: TLS is verified.
        with pytest.raises(Exception, match=r"(?i)certificate"):
            connect(Settings(clickhouse_url=url, clickhouse_password=password)).command("SELECT 1")
    finally:
        front.terminate()
        out = front.communicate(timeout=20)[0].decode(errors="replace")
        assert password not in out


SECRETS = {
    "clickhouse_password": "SEKRIT-clickhouse-41",
    "alert_webhook_url": None,  # set below: a receiver URL whose path is the secret
    "grafana_token": "SEKRIT-grafana-42",
    "pii_hash_key": "SEKRIT-hashkey-43",
    "kafka_key_password": "SEKRIT-keypw-44",
}


def test_no_secret_reaches_logs_letters_alerts_or_notifications(
    tmp_path: Path, runtime: LocalRuntime
) -> None:
    from pipeline.traffic.scenarios import alert_scenario
    from tests.test_alerts_e2e import Receiver

    scenario = alert_scenario()
    rules = tmp_path / "rules.yaml"
    rules.write_text(scenario.rules_yaml)
    webhook, grafana = Receiver(), Receiver()
    secrets = {
        "alert_rules": str(rules),
        **SECRETS,
        "alert_webhook_url": f"{webhook.url}/hooks/SEKRIT-webhook-45",
        "grafana_url": grafana.url,
        "pii_redaction": "hash",
        "notify_initial_backoff": "0.2",
        "notify_max_backoff": "1",
    }
    try:
        with Namespace.create(tmp_path, **_sasl(runtime), **secrets) as ns:
            values = [v for k, v in secrets.items() if k in SECRETS or k == "alert_webhook_url"] + [
                TEST_KAFKA_PASSWORD,
                "SEKRIT-webhook-45",
            ]
            s = ns.settings
            # The alert scenario's tickets raise known alerts (notifications to check).
            tickets = [r.record for r in scenario.records if r.role == "tickets"]
            posts = sample_posts(80, run_id="secrets", seed=9)
            bad = bad_records("post", run_id="secrets")
            asyncio.run(produce(s.kafka, s.posts_topic, posts[:40] + bad))
            asyncio.run(produce(s.kafka, s.tickets_topic, tickets))
            ns.start_worker()
            wait_until(lambda: ns.landed() >= 40, 180, "the first events")
            runtime.stop("clickhouse")  # an outage: retries log what failed
            time.sleep(8)
            asyncio.run(produce(s.kafka, s.posts_topic, posts[40:]))
            time.sleep(4)
            runtime.start("clickhouse")
            wait_until(lambda: ns.landed() >= len(posts) + len(tickets), 240, "everything to land")
            ns.wait_caught_up(120)
            # A start-up that fails a whole-settings check prints the error, not values.
            env = {
                **ns.env,
                "MOODPIPE_RETRY_INITIAL_BACKOFF": "5",
                "MOODPIPE_RETRY_MAX_BACKOFF": "1",
            }
            broken = subprocess.run(
                [sys.executable, "-m", "pipeline.cli", "worker"],
                env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert broken.returncode != 0 and "retry_max_backoff" in broken.stdout + broken.stderr

            letters = ns.dead_letters()
            assert len(letters) >= len(bad)
            places = {
                "worker logs": "".join(
                    p.read_text(errors="replace") for p in tmp_path.glob("*.log")
                ),
                "failed start-up": broken.stdout + broken.stderr,
                "dead-letter topic": json.dumps(letters),
                "dead_letters table": json.dumps(
                    ns.query("SELECT * FROM dead_letters"), default=str
                ),
                "alerts table": json.dumps(ns.alerts(), default=str),
                "alerts topic": json.dumps(ns.alert_messages(), default=str),
                "scored events": json.dumps(ns.query("SELECT * FROM scored_events"), default=str),
                "webhook posts": json.dumps([r[2] for r in webhook.requests]),
                "grafana posts": json.dumps([(r[0], r[2]) for r in grafana.requests]),
                "runtime logs": "".join(
                    runtime.log_path(n).read_text(errors="replace") for n in ("kafka", "clickhouse")
                ),
            }
            assert ns.alerts(), "the scenario should raise alerts to check"
            assert webhook.requests and grafana.requests
            for where, text in places.items():
                for value in values:
                    assert value not in text, f"a secret reached the {where}"
    finally:
        webhook.close()
        grafana.close()


def test_triton_grpc_over_tls(tmp_path: Path, runtime: LocalRuntime) -> None:
    """A second, real tritonserver serving only the near-free model over gRPC TLS."""
    from pipeline.connections.triton import TritonTLS
    from pipeline.inference.triton_client import TritonEmotionClient
    from pipeline.resources import triton_models_dir

    cert, key = _self_signed(tmp_path)
    binary, backends, env = runtime._triton_install()
    grpc, http, metrics = free_port(), free_port(), free_port()
    server = subprocess.Popen(
        [str(binary), f"--model-repository={triton_models_dir()}",
         f"--backend-directory={backends}", "--model-control-mode=explicit",
         "--load-model=emotion_null", "--http-address=127.0.0.1", f"--http-port={http}",
         "--grpc-address=127.0.0.1", f"--grpc-port={grpc}", f"--metrics-port={metrics}",
         "--allow-metrics=false", "--grpc-use-ssl=true", f"--grpc-server-cert={cert}",
         f"--grpc-server-key={key}", "--exit-timeout-secs=5"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip

    async def score(tls: TritonTLS | None) -> list[str]:
        client = TritonEmotionClient(
            f"127.0.0.1:{grpc}", "emotion_null", tls=tls, max_backoff=0.5, timeout=10
        )
        try:
            return list((await client.score(["TLS works"])).sentiment)
        finally:
            await client.close()

    try:
        import urllib.request

        def ready() -> bool:
            try:
                url = f"http://127.0.0.1:{http}/v2/models/emotion_null/ready"
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(ready, 120, "the TLS tritonserver")
        assert asyncio.run(score(TritonTLS(ca_file=cert))) == ["neutral"]
        with pytest.raises(Exception):  # noqa: B017 - plaintext to a TLS port fails, any way
            asyncio.run(asyncio.wait_for(score(None), 15))
    finally:
        server.terminate()
        server.wait(30)
