"""How every Kafka client moodpipe creates connects: bootstrap servers and security.

One `KafkaConnection` (from `Settings.kafka`) feeds the Faust app, the CLI's
producers, the admin client, record/replay, the bench, the demo and the test
harness, so SASL or TLS set once in the environment applies to all of them.
Functions that take a connection also take a plain ``"host:port"`` string, which
means a PLAINTEXT broker (handy in tests and scripts).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
NO_SECRET = SecretStr("")  # immutable, so one shared default is safe


class KafkaSetupError(RuntimeError):
    """The broker answered but refused this client: credentials, TLS or mechanism.

    Unlike an outage this does not heal by waiting, so it is reported at once.
    The message names the broker, protocol and user, never the password.
    """


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap: str  # host:port[,host:port]
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str = ""
    password: SecretStr = NO_SECRET
    ca_file: Path | None = None
    cert_file: Path | None = None  # client certificate (mutual TLS), PEM
    key_file: Path | None = None
    key_password: SecretStr = NO_SECRET

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def describe(self) -> str:
        """For messages and logs: where and how, never the password."""
        how: str = self.security_protocol
        if self.uses_sasl:
            how += f" {self.sasl_mechanism} as {self.username!r}"
        return f"{self.bootstrap} ({how})"

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file:
            context.load_cert_chain(
                str(self.cert_file),
                str(self.key_file) if self.key_file else None,
                self.key_password.get_secret_value() or None,
            )
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        context = self.ssl_context()
        if context is not None:
            options["ssl_context"] = context
        if self.uses_sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password.get_secret_value()
        return options


def as_connection(kafka: KafkaConnection | str) -> KafkaConnection:
    return KafkaConnection(bootstrap=kafka) if isinstance(kafka, str) else kafka


async def check_connection(kafka: KafkaConnection | str, timeout: float = 10.0) -> bool:
    """Connect to a bootstrap server and authenticate, as the clients will.

    Returns True when the broker accepted us, False when none answered (an outage:
    the caller waits it out). Raises `KafkaSetupError` when a broker answered and
    refused: a wrong password, an unknown mechanism, a TLS failure.
    """
    from aiokafka import errors
    from aiokafka.conn import create_conn

    connection = as_connection(kafka)
    options = connection.client_options()
    options.pop("bootstrap_servers")
    refused: list[str] = []
    for server in connection.bootstrap.split(","):
        host, port = server.strip().rsplit(":", 1)
        try:
            conn = await asyncio.wait_for(
                create_conn(host, int(port), request_timeout_ms=int(timeout * 1000), **options),
                timeout,
            )
        except (
            errors.SaslAuthenticationFailed,
            errors.AuthenticationFailedError,
            errors.UnsupportedSaslMechanismError,
            errors.IllegalSaslStateError,
            ssl.SSLError,
        ) as exc:
            refused.append(f"{server}: {type(exc).__name__}: {_safe_reason(exc, connection)}")
            continue
        except (OSError, TimeoutError, errors.KafkaError):
            continue  # not answering (or not yet): an outage, not a setup error
        conn.close()
        return True
    if refused:
        raise KafkaSetupError(
            f"Kafka at {connection.describe()} refused this client: {'; '.join(refused)}. "
            "Check MOODPIPE_KAFKA_SECURITY_PROTOCOL, MOODPIPE_KAFKA_SASL_MECHANISM, "
            "MOODPIPE_KAFKA_USERNAME and MOODPIPE_KAFKA_PASSWORD (and the CA file for TLS)."
        )
    return False


def _safe_reason(exc: BaseException, connection: KafkaConnection) -> str:
    # A broker's message is its own text, but never echo a secret we sent.
    reason = str(exc) or type(exc).__name__
    for secret in (connection.password, connection.key_password):
        value = secret.get_secret_value()
        if value:
            reason = reason.replace(value, "***")
    return reason
