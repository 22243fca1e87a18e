"""The embedded ClickHouse engine (chDB) behind the ClickHouse HTTP interface.

chDB allows one process per data directory, but the worker, the CLI and the tests
are separate processes. This process owns the directory and speaks enough of the
ClickHouse HTTP protocol for clickhouse-connect's ordinary `http://` client, so
every other process uses exactly the code path it would use against a real server.

Run: `python -m pipeline.local.clickhouse_server --path DIR --port 8123`.

With MOODPIPE_CLICKHOUSE_PASSWORD set (read from the environment, never the
command line) every query must authenticate the way ClickHouse's HTTP interface
takes credentials: Basic auth, X-ClickHouse-User/X-ClickHouse-Key headers, or
user/password URL parameters; /ping stays open, as on a real server. With
--tls-cert/--tls-key it serves https.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import logging
import os
import re
import ssl
import tempfile
import threading
import uuid
import zlib
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb

log = logging.getLogger("moodpipe.clickhouse")

# Parameters that describe the HTTP session rather than ClickHouse settings.
TRANSPORT_PARAMS = {
    "query", "database", "default_format", "session_id", "session_timeout",
    "session_check", "query_id", "compress", "decompress", "user", "password",
    "wait_end_of_query", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
    "enable_http_compression", "client_protocol_version", "buffer_size", "quota_key",
    "role", "max_result_rows", "result_overflow_mode",
    "cancel_http_readonly_queries_on_client_close",
}  # fmt: skip
INSERT_WITH_DATA = re.compile(
    rb"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+(\w+)[ \t]*\r?\n?", re.IGNORECASE | re.DOTALL
)
TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
ERROR_CODE = re.compile(r"Code:\s*(\d+)")


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    """One chDB connection, serialised: session state (USE, SET) is per connection."""

    def __init__(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self.conn = chdb.connect(os.path.realpath(path))
        self.lock = threading.Lock()

    def run(self, sql: str, fmt: str, database: str | None, settings: dict[str, str],
            params: dict[str, str]) -> Any:  # fmt: skip
        with self.lock:
            self.conn.query(f"USE {database or 'default'}", "TabSeparated")
            for key, value in settings.items():
                if not re.fullmatch(r"[A-Za-z0-9_]+", key):
                    raise ValueError(f"bad setting name {key!r}")
                self.conn.query(f"SET {key} = {_quote(value)}", "TabSeparated")
            try:
                return self.conn.query(sql, fmt, params=params)
            finally:
                for key in settings:
                    self.conn.query(f"SET {key} = DEFAULT", "TabSeparated")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY every small insert waits on delayed ACKs (~40 ms).
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug(format, *args)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path in ("/ping", "/") and not dict(parse_qsl(url.query)).get("query"):
            self._reply(200, b"Ok.\n", {})
            return
        if self._authenticated():
            self._execute(b"")

    def _authenticated(self) -> bool:
        """ClickHouse's HTTP credentials conventions; 403 with code 516 when wrong."""
        expected = self.server.password
        if not expected:
            return True
        user, password = self.headers.get("X-ClickHouse-User"), self.headers.get("X-ClickHouse-Key")
        basic = self.headers.get("Authorization", "")
        if basic.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                user = password = None
        query = dict(parse_qsl(urlsplit(self.path).query))
        user = user or query.get("user") or "default"
        password = password if password is not None else query.get("password", "")
        if user == self.server.user and hmac.compare_digest(
            (password or "").encode(), expected.encode()
        ):
            return True
        # Drain the body so the connection stays usable for the client's next request.
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._error(
            403,
            f"Code: 516. DB::Exception: {user}: Authentication failed: password is "
            "incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)",
        )
        return False

    def do_POST(self) -> None:
        if not self._authenticated():
            return
        length = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            body = self.rfile.read(length) if length else b""
        encoding = self.headers.get("Content-Encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS if encoding == "gzip" else 0)
        elif encoding == "lz4":  # clickhouse-connect's default against http(s):// URLs
            import lz4.frame

            body = lz4.frame.decompress(body)
        elif encoding not in ("", "identity"):
            self._error(
                415, f"Content-Encoding {encoding} is not supported here; use lz4, gzip or none"
            )
            return
        form: dict[str, str] = {}
        if self.headers.get_content_type() == "multipart/form-data":
            # clickhouse-connect sends query parameters over 4 KiB as form fields.
            form, body = _form_fields(self.headers.get("Content-Type", ""), body)
        self._execute(body, form)

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                self.rfile.readline()
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _execute(self, body: bytes, form: dict[str, str] | None = None) -> None:
        url = urlsplit(self.path)
        params = {**dict(parse_qsl(url.query, keep_blank_values=True)), **(form or {})}
        query = params.get("query", "").encode()
        text = query + (b"\n" + body if query and body else body)
        database = params.get("database") or self.headers.get("X-ClickHouse-Database")
        query_params = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v
            for k, v in params.items()
            if k not in TRANSPORT_PARAMS and not k.startswith("param_")
        }
        default_format = str(
            params.get("default_format") or self.headers.get("X-ClickHouse-Format", "TabSeparated")
        )
        tmp_path = None
        try:
            insert = INSERT_WITH_DATA.match(text)
            if insert and text[insert.end() :]:
                # The HTTP interface streams insert data after the statement; chDB reads
                # it from a file instead.
                with tempfile.NamedTemporaryFile(delete=False, suffix=".insert") as tmp:
                    tmp.write(text[insert.end() :])
                    tmp_path = tmp.name
                target, fmt = insert.group(1).decode(), insert.group(2).decode()
                sql = f"{target} FROM INFILE {_quote(tmp_path)} FORMAT {fmt}"
                out_format = "TabSeparated"
            else:
                sql = text.decode("utf-8")
                found = TRAILING_FORMAT.search(sql)
                out_format = found.group(1) if found else default_format
            result = self.server.engine.run(sql, out_format, database, settings, query_params)
        except Exception as exc:  # noqa: BLE001 - every engine error becomes an HTTP error
            self._error(500, str(exc))
            return
        finally:
            if tmp_path:
                os.unlink(tmp_path)
        data = result.bytes() if result is not None else b""
        summary = {
            "read_rows": str(result.rows_read()) if result is not None else "0",
            "read_bytes": str(result.bytes_read()) if result is not None else "0",
            "written_rows": str(result.rows_written()) if result is not None else "0",
            "written_bytes": str(result.bytes_written()) if result is not None else "0",
            "elapsed_ns": str(int(result.elapsed() * 1e9)) if result is not None else "0",
        }
        self._reply(200, data, {"X-ClickHouse-Format": out_format,
                                "X-ClickHouse-Summary": json.dumps(summary)})  # fmt: skip

    def _error(self, status: int, message: str) -> None:
        code = ERROR_CODE.search(message)
        headers = {"X-ClickHouse-Exception-Code": code.group(1) if code else "1000"}
        self._reply(status, (message.rstrip() + "\n").encode(), headers)

    def _reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-ClickHouse-Server-Display-Name", "moodpipe-chdb")
        self.send_header("X-ClickHouse-Query-Id", str(uuid.uuid4()))
        self.send_header("X-ClickHouse-Timezone", "UTC")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


def _form_fields(content_type: str, body: bytes) -> tuple[dict[str, str], bytes]:
    """Fields of a multipart/form-data body (query, param_*), and what is left as data."""
    message = BytesParser(policy=default_policy).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    data = b""
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if not isinstance(payload, bytes):  # a nested multipart: not what the client sends
            continue
        if name and not part.get_filename():
            fields[str(name)] = payload.decode("utf-8")
        else:
            data += payload
    return fields, data


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], engine: Engine, user: str = "default", password: str = ""
    ) -> None:
        self.engine = engine
        self.user = user
        self.password = password
        super().__init__(address, Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--tls-cert", help="PEM certificate (chain): serve https")
    parser.add_argument("--tls-key", help="PEM private key of --tls-cert")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    os.environ.setdefault("TZ", "UTC")
    server = Server(
        (args.host, args.port),
        Engine(args.path),
        user=os.environ.get("MOODPIPE_CLICKHOUSE_USER") or "default",
        password=os.environ.get("MOODPIPE_CLICKHOUSE_PASSWORD", ""),
    )
    scheme = "http"
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    log.info("embedded ClickHouse (chDB %s) on %s://%s:%d, data in %s, %s",
             chdb.__version__, scheme, args.host, args.port, args.path,
             "password required" if server.password else "no password")  # fmt: skip
    server.serve_forever()


if __name__ == "__main__":
    main()
