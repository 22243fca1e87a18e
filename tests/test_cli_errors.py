"""Command-line errors, tried as a new user would, through the real services.

Every `moodpipe` error is one line on stderr with a non-zero exit and no traceback
(`-v` adds it); a command that connects says which service refused it and why;
`score` applies the worker's input rules and names the line. Nothing of an error
reaches stdout, where results (and `score`'s JSON Lines) go.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.local.runtime import LocalRuntime
from pipeline.testing.plugin import TEST_KAFKA_USER, free_port
from tests.helpers import wait_until


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when the socket is


def moodpipe(*args: str, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env={**os.environ, **{f"MOODPIPE_{k.upper()}": v for k, v in env.items()}},
        input=stdin, capture_output=True, timeout=180,
    )  # fmt: skip
    done.out = done.stdout.decode()  # type: ignore[attr-defined]
    done.err = done.stderr.decode()  # type: ignore[attr-defined]
    return done


def one_line_error(done: subprocess.CompletedProcess, *expected: str) -> str:
    """The command failed with exactly one error line on stderr holding `expected`."""
    assert done.returncode != 0, done.out + done.err
    assert "Traceback" not in done.err, done.err
    errors = [line for line in done.err.splitlines() if ": error: " in line]
    assert len(errors) == 1, done.err
    # Nothing else either (client libraries' warnings, retries), but what a command
    # reports line by line before it (`score`'s rejected lines).
    others = [line for line in done.err.splitlines() if line not in errors]
    assert all(line.startswith("moodpipe ") for line in others), done.err
    for text in expected:
        assert text in errors[0], errors[0]
    assert ": error: " not in done.out, done.out
    return errors[0]


# --- without services ------------------------------------------------------------


def test_score_applies_the_worker_rules_and_names_each_bad_line() -> None:
    lines = [
        b"I love this, thank you!",
        b"\xff\xfe not UTF-8",
        b'{"text": "broken json"',
        b"x" * 20_000,  # over MOODPIPE_MAX_TEXT_CHARS (10,000): text_too_long
        b"y" * 5_000_000,  # over MOODPIPE_MAX_RECORD_BYTES: the worker would refuse it too
        b'{"id": 7, "text": "   "}',
        b'{"id": 8, "text": "This is awful, nobody answers"}',
    ]
    done = moodpipe("score", "--local", stdin=b"\n".join(lines) + b"\n", triton_url="")
    assert done.returncode == 1
    assert "Traceback" not in done.err
    scored = [json.loads(line) for line in done.out.splitlines()]
    assert [d.get("id") for d in scored] == [None, 8]  # the good lines, nothing else
    assert scored[0]["sentiment"] == "positive"
    rejected = [line for line in done.err.splitlines() if line.startswith("moodpipe score: line")]
    assert len(rejected) == 5, done.err
    for number, code in ((2, "invalid_utf8"), (3, "invalid_json"), (4, "text_too_long"),
                         (5, "record_too_large"), (6, "text_empty")):  # fmt: skip
        assert any(f"line {number}: " in r and f"[{code}]" in r for r in rejected), rejected
    assert "over the limit of 10000" in done.err
    one_line_error(done, "5 line(s) not scored")


def test_a_bad_file_is_one_line_and_v_adds_the_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "no-such.mprec"
    missing.write_bytes(b"not a recording at all")
    done = moodpipe("recording-info", str(missing))
    one_line_error(done, "moodpipe recording-info: error:")
    verbose = moodpipe("-v", "recording-info", str(missing))
    assert verbose.returncode != 0 and "Traceback" in verbose.err


def test_services_that_do_not_answer_are_named_with_where_and_why(tmp_path: Path) -> None:
    port = _closed_port()
    kafka = {"kafka_url": f"kafka://127.0.0.1:{port}"}
    for args in (["topics"], ["record", "posts", "-o", str(tmp_path / "r.mprec")]):
        one_line_error(moodpipe(*args, **kafka), f"Kafka at 127.0.0.1:{port}", "does not answer")
    recording = Path(__file__).parent / "recordings" / "sample.mprec"
    one_line_error(moodpipe("replay", str(recording), **kafka), "Kafka at", "does not answer")
    clickhouse = {"clickhouse_url": f"http://127.0.0.1:{port}"}
    for args in (["sql", "SELECT 1"], ["alerts", "list"], ["migrate"],
                 ["report", "--png", str(tmp_path / "r.png")]):  # fmt: skip
        one_line_error(moodpipe(*args, **clickhouse),
                       f"ClickHouse at http://127.0.0.1:{port}", "does not answer")  # fmt: skip
    one_line_error(
        moodpipe("score", "--triton", stdin=b"hello\n", triton_url=f"127.0.0.1:{port}"),
        f"Triton at 127.0.0.1:{port}",
    )
    grafana = {"grafana_url": f"http://127.0.0.1:{port}", "grafana_token": "t0ken-never-shown"}
    error = one_line_error(moodpipe("dashboards", "publish", **grafana), "Grafana at")
    assert "t0ken-never-shown" not in error


# --- through the session's real services ------------------------------------------


@pytest.fixture
def protected_clickhouse(tmp_path: Path) -> Iterator[str]:
    """A ClickHouse front (the real engine, over HTTP) that wants a password; its URL."""
    port = free_port()
    front = subprocess.Popen(
        [sys.executable, "-m", "pipeline.local.clickhouse_server", "--path",
         str(tmp_path / "ch"), "--port", str(port)],
        env={**os.environ, "MOODPIPE_CLICKHOUSE_PASSWORD": CLICKHOUSE_PASSWORD, "TZ": "UTC"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: moodpipe("migrate", clickhouse_url=url, clickhouse_database="cli",
                             clickhouse_password=CLICKHOUSE_PASSWORD).returncode == 0,
            60, "the ClickHouse front",
        )  # fmt: skip
        yield url
    finally:
        front.terminate()
        front.wait(30)


CLICKHOUSE_PASSWORD = "ch-cli-pw-51c2"


@pytest.mark.services
def test_clickhouse_refusals_say_why_for_every_command_that_queries(
    protected_clickhouse: str, tmp_path: Path
) -> None:
    base = {"clickhouse_url": protected_clickhouse, "clickhouse_database": "cli"}
    works = moodpipe("sql", "SELECT count() AS n FROM scored_events", "--format", "json",
                     clickhouse_password=CLICKHOUSE_PASSWORD, **base)  # fmt: skip
    assert works.returncode == 0 and json.loads(works.out) == [{"n": 0}], works.err
    wrong = {**base, "clickhouse_password": "not-the-password-9f1"}
    for args in (["sql", "SELECT 1"], ["alerts", "list"], ["migrate"],
                 ["report", "--png", str(tmp_path / "r.png")]):  # fmt: skip
        error = one_line_error(moodpipe(*args, **wrong), f"ClickHouse at {protected_clickhouse}",
                               "Authentication failed", "MOODPIPE_CLICKHOUSE_PASSWORD")  # fmt: skip
        assert "not-the-password-9f1" not in error and CLICKHOUSE_PASSWORD not in error
    missing = {**base, "clickhouse_password": CLICKHOUSE_PASSWORD,
               "clickhouse_database": "no_such_database_here"}  # fmt: skip
    for args in (["sql", "SELECT 1"], ["alerts", "list"]):
        one_line_error(moodpipe(*args, **missing), "ClickHouse at", "no_such_database_here",
                       "UNKNOWN_DATABASE", "moodpipe migrate")  # fmt: skip
    one_line_error(moodpipe("sql", "SELEC 1", clickhouse_password=CLICKHOUSE_PASSWORD, **base),
                   "ClickHouse at", "Syntax error")  # fmt: skip


@pytest.mark.services
def test_kafka_refusing_credentials_stops_every_kafka_command_with_exit_2(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    sasl = {
        "kafka_url": f"kafka://127.0.0.1:{runtime.settings.local_kafka_sasl_port}",
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "kafka_sasl_mechanism": "SCRAM-SHA-256",
        "kafka_username": TEST_KAFKA_USER,
        "kafka_password": "wrong-pw-33a1",
    }
    recording = Path(__file__).parent / "recordings" / "sample.mprec"
    for args in (["topics"], ["record", "posts", "-o", str(tmp_path / "r.mprec")],
                 ["replay", str(recording)], ["worker"]):  # fmt: skip
        done = moodpipe(*args, **sasl)
        error = one_line_error(done, "Kafka", "127.0.0.1")
        assert done.returncode == 2, error
        assert "wrong-pw-33a1" not in done.err + done.out


@pytest.mark.services
def test_score_through_triton_rejects_the_same_lines_as_in_process(runtime: LocalRuntime) -> None:
    stdin = b"What a great day\n\xc3\x28 broken\n" + b"z" * 10_001 + b"\n"
    local = moodpipe("score", "--local", stdin=stdin)
    remote = moodpipe("score", "--triton", stdin=stdin, triton_url=runtime.settings.triton_url)
    assert local.returncode == remote.returncode == 1
    assert local.err.splitlines() == remote.err.splitlines()
    assert len(local.out.splitlines()) == len(remote.out.splitlines()) == 1
    assert "line 2: " in local.err and "[invalid_utf8]" in local.err
    assert "line 3: " in local.err and "[text_too_long]" in local.err


# --- the functions behind the commands, without click ---------------------------------


def test_a_clickhouse_error_keeps_the_server_words_and_drops_the_noise() -> None:
    from pipeline.cli.errors import reason

    raw = Exception(
        "HTTPDriver for http://127.0.0.1:8123 received ClickHouse error code 81\n"
        " Code: 81. DB::Exception: Database nope does not exist. (UNKNOWN_DATABASE) "
        "(version 26.9.1.1 (official build)) (for url http://127.0.0.1:8123)\nStack trace: ..."
    )
    said = reason(raw)
    assert said.startswith("Database nope does not exist (code 81, UNKNOWN_DATABASE)")
    assert "moodpipe migrate" in said and "version" not in said and "Stack" not in said
    assert "\n" not in reason(Exception("line one\nline two"))
    assert "is it running?" in reason(ConnectionRefusedError(111, "Connection refused"))


def test_saved_and_ad_hoc_queries_bind_their_parameters() -> None:
    from pipeline.analytics.queries import parse_params, prepare_query

    assert parse_params(["brand=Acme Air", "hours=6"]) == {"brand": "Acme Air", "hours": "6"}
    with pytest.raises(ValueError, match="expected NAME=VALUE"):
        parse_params(["brand"])
    sql, bound = prepare_query("SELECT {n:UInt32} + 1, {who:String}", {"n": "41", "who": "x"})
    assert bound == {"n": 41, "who": "x"} and sql.startswith("SELECT {n:UInt32}")
    sql, bound = prepare_query("alert_history", {"hours": "3"})
    assert "FROM alerts" in sql and bound["hours"] == 3 and set(bound) >= {"kind", "brand"}
    with pytest.raises(ValueError, match="has no parameter nope"):
        prepare_query("alert_history", {"nope": "1"})
