"""All configuration in one place, read from `MOODPIPE_*` environment variables.

Every process (worker, CLI, local runtime, tests) builds the same `Settings`, so a
value set once in the environment means the same thing everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.connections.kafka import KafkaConnection, SaslMechanism, SecurityProtocol
from pipeline.connections.triton import TritonTLS
from pipeline.redaction import DEFAULT_ENTITIES, RedactionMode


class Settings(BaseSettings):
    # hide_input_in_errors: a validation error must not print the other settings'
    # values, secrets among them (pydantic shows the whole input by default).
    model_config = SettingsConfigDict(
        env_prefix="MOODPIPE_", extra="ignore", hide_input_in_errors=True
    )

    # Where the local runtime keeps data, logs, PIDs and cached jars.
    data_dir: Path = Path(".moodpipe")

    # Services. The URLs are what the worker connects to; the local runtime starts
    # servers matching them when they point at 127.0.0.1.
    kafka_url: str = "kafka://127.0.0.1:9092"
    # Kafka security (docs/configuration.md); every
    # Kafka client moodpipe creates uses these (pipeline/kafka_connection.py).
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_username: str = ""
    kafka_password: SecretStr = SecretStr("")
    kafka_ca_file: Path | None = None  # PEM CA bundle for SSL / SASL_SSL
    kafka_cert_file: Path | None = None  # client certificate for mutual TLS (PEM)
    kafka_key_file: Path | None = None
    kafka_key_password: SecretStr = SecretStr("")
    # Local runtime only: an additional SASL_PLAINTEXT listener on this port (0: none)
    # with SCRAM-SHA-256/512 users "name:password[,name:password]" (to try SASL here).
    local_kafka_sasl_port: int = Field(default=0, ge=0, le=65535)
    local_kafka_sasl_users: SecretStr = SecretStr("")
    # Local runtime only: the broker's PLAINTEXT port; 0 means the port of kafka_url
    # (set it when kafka_url points at the SASL listener).
    local_kafka_port: int = Field(default=0, ge=0, le=65535)
    triton_url: str = "127.0.0.1:8001"  # gRPC host:port
    # gRPC over TLS (tritonserver --grpc-use-ssl); the CA file and, for mutual TLS,
    # a client certificate and key (PEM).
    triton_tls: bool = False
    triton_ca_file: Path | None = None
    triton_cert_file: Path | None = None
    triton_key_file: Path | None = None
    triton_http_port: int = 8000
    triton_metrics_port: int = 8002
    kafka_controller_port: int = 9093
    # tritonserver --model-config-name: "gpu" selects configs/gpu.pbtxt (native ORT).
    triton_model_config: str = ""
    # A second model repository for the local tritonserver (your own models; the tests'
    # fault-injecting model). Model names must differ from those in triton_models/.
    triton_extra_model_repository: Path | None = None
    # Empty means the embedded engine at chdb://<data_dir>/clickhouse.
    clickhouse_url: str = ""
    clickhouse_database: str = "moodpipe"
    clickhouse_user: str = "default"
    clickhouse_password: SecretStr = SecretStr("")
    # https:// URLs: the CA bundle that signed the server's certificate (PEM); empty
    # uses the system's. clickhouse_verify=False is for throwaway test servers only.
    clickhouse_ca_file: Path | None = None
    clickhouse_verify: bool = True
    # Port of the local HTTP front over the embedded engine (see local/clickhouse_server.py).
    clickhouse_local_port: int = 8123

    # Topics.
    posts_topic: str = "social-posts"
    tickets_topic: str = "support-tickets"
    dead_letter_topic: str = "moodpipe-dead-letters"
    # Scored events keyed by brand (for downstream consumers and the alert detector).
    scored_topic: str = "moodpipe-scored"
    alerts_topic: str = "moodpipe-alerts"
    topic_partitions: int = Field(default=4, ge=1)

    # Worker.
    app_id: str = "moodpipe"
    batch_size: int = Field(default=64, ge=1, le=4096)
    agent_concurrency: int = Field(
        default=2,
        ge=1,
        le=16,
        description="batches in flight per agent: one is scored while another is written",
    )
    batch_timeout: float = Field(default=0.25, gt=0, description="seconds to wait to fill a batch")
    session_timeout: float = Field(
        default=10.0,
        ge=6,
        description="Kafka group session timeout; a killed worker's "
        "partitions move to the others after this long",
    )
    web_port: int = Field(default=0, ge=0, description="Faust web server port; 0 disables it")
    # How long the broker may hold a fetch for partitions without new records. Faust
    # fixes it at 1.5 s, and aiokafka sends one fetch per broker at a time: while it
    # waits on quiet partitions (tickets), drained busy ones (posts) are not re-fetched
    # until it returns (seen in a traced burst: the posts' next fetch waited for the
    # quiet one). Not measured alone: the ~0.6 s burst stalls were the poll's
    # (pipeline/worker/faust_patches/delivery.py POLL_TIMEOUT).
    fetch_max_wait: float = Field(default=0.1, gt=0, le=30)
    # Storage batches (pipeline/sink/buffer.py): the rows of many inference batches go
    # to ClickHouse in one insert: at once when sink_max_rows are waiting, else no more
    # often than every sink_flush_interval seconds. Events are acked after their insert.
    sink_max_rows: int = Field(default=10_000, ge=1, le=1_000_000)
    sink_flush_interval: float = Field(default=0.25, ge=0, le=60)
    # Fewer rows than sink_min_rows wait up to sink_max_wait seconds for more: light
    # traffic is written about once a second, not once per inference batch.
    sink_min_rows: int = Field(default=1000, ge=1, le=1_000_000)
    sink_max_wait: float = Field(default=1.0, ge=0, le=60)
    lag_sample_interval: float = Field(default=10.0, gt=0)  # seconds between lag samples
    # Days to keep raw text (text, subject, author) of scored events; 0 keeps it.
    # Rollups and scores stay (privacy: the words go, the analytics remain).
    raw_text_ttl_days: int = Field(default=0, ge=0)
    # PII redaction (pipeline/redaction.py) of stored and published text: off, mask
    # (<EMAIL_ADDRESS>) or hash (<EMAIL_ADDRESS:digest>, keyed by pii_hash_key). The
    # model always scores the original; the dead-letter topic keeps original bytes.
    pii_redaction: RedactionMode = "mask"
    pii_hash_key: SecretStr = SecretStr("")
    pii_entities: str = ",".join(DEFAULT_ENTITIES)
    # An installed spaCy NER model (e.g. en_core_web_lg) adds person names.
    pii_spacy_model: str = ""
    bind_host: str = "127.0.0.1"

    # Inference.
    model_name: str = "emotion"
    # Overrides the model's own label threshold (e.g. to try a new one in a replay test).
    label_threshold: float | None = Field(default=None, gt=0, lt=1)
    # The multilingual model (`emotion_ml`) scores non-English text; "" turns it off
    # (non-English events are then scored by the English model and marked coverage none).
    multilingual_model_name: str = "emotion_ml"
    # Languages (ISO 639-1) each model covers; see pipeline/language.py and the model card.
    english_languages: str = "en"
    # In-language training data (XED projections) -> coverage "full".
    multilingual_languages: str = "zh,de,es,ru,pt,ro,sv"
    # Cross-lingual transfer only, measured on BRIGHTER -> coverage "partial".
    multilingual_partial_languages: str = (
        "fr,it,nl,pl,hi,uk,ja,ko,ar,tr,vi,id,fi,cs,el,he,th,fa,da,no,hu,bg"
    )
    # When to identify the language: "missing" (no `lang` in the record), "always"
    # (also checks declared ones; both are stored) or "off".
    lang_detect: Literal["missing", "always", "off"] = "missing"
    lang_detect_min_confidence: float = Field(default=0.5, ge=0, le=1)
    # Languages detection may also answer with (marked coverage none when scored).
    lang_detect_extra: str = "am,sw,tl,ms,ur,bn,ta,mr"
    triton_timeout: float = Field(default=30.0, gt=0)
    retry_initial_backoff: float = Field(default=0.2, gt=0)
    retry_max_backoff: float = Field(default=10.0, gt=0)

    # Alerts (pipeline/alerts). Rules: a YAML file; empty means the packaged defaults.
    alerts_enabled: bool = True
    alert_rules: Path | None = None
    alert_batch_size: int = Field(default=500, ge=1, le=10_000)
    # Reply-tone guidance on alerts (pipeline/alerts/playbook.py); empty: the packaged one.
    reply_playbook: Path | None = None
    # Why flagged (pipeline/explain): occlusion explanations on alerts about a text, and
    # the most units (words) one explanation removes one at a time.
    explain_alerts: bool = True
    explain_max_units: int = Field(default=48, ge=2, le=255)
    # Slack-compatible webhook; its URL is a credential, so it is a secret.
    alert_webhook_url: SecretStr = SecretStr("")
    # Grafana annotations through the HTTP API, when both are set.
    grafana_url: str = ""
    grafana_token: SecretStr = SecretStr("")
    notify_max_attempts: int = Field(default=6, ge=1, le=20)
    notify_initial_backoff: float = Field(default=1.0, gt=0)
    notify_max_backoff: float = Field(default=30.0, gt=0)
    notify_timeout: float = Field(default=10.0, gt=0)

    # Validation (docs/bad-input.md).
    max_text_chars: int = Field(default=10_000, ge=1)
    max_record_bytes: int = Field(default=256 * 1024, ge=1)
    # Accepted created_at window: [min_created_at, now + max_future_seconds]. Older
    # times are nearly always a zero or epoch default of a broken producer; scored
    # events are partitioned by day, so stray years would also scatter the table.
    min_created_at: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future_seconds: float = Field(default=86_400.0, ge=0)

    # Poison records and dead letters.
    # Tries of a failing batch (and of a record alone) before it is isolated; outages
    # (a service that does not answer) are retried without limit instead.
    poison_attempts: int = Field(default=3, ge=1, le=20)
    # The worker's Kafka producer request limit, and the most a dead letter may take
    # of it: larger records are dead-lettered with their bytes cut (truncated: true).
    producer_max_request_size: int = Field(default=1_000_000, ge=16_384)
    # Table changelog messages that may wait to be produced before Faust pauses streams.
    producer_buffer_max_messages: int = Field(default=50_000, ge=100)
    dead_letter_max_bytes: int = Field(default=900_000, ge=4096)

    @field_validator("kafka_url")
    @classmethod
    def _kafka_scheme(cls, value: str) -> str:
        if not value.startswith("kafka://"):
            raise ValueError("must look like kafka://host:port[;host:port]")
        return value

    @field_validator("clickhouse_url")
    @classmethod
    def _clickhouse_scheme(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in ("chdb", "http", "https"):
            raise ValueError("must be chdb:///path, http://host:port or https://host:port")
        if urlsplit(value).password:
            # URLs are shown in status output and logs; a password there would leak.
            raise ValueError("put the password in MOODPIPE_CLICKHOUSE_PASSWORD, not in the URL")
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> Settings:
        unknown = set(self.pii_entity_list) - set(DEFAULT_ENTITIES)
        if unknown:
            raise ValueError(
                f"MOODPIPE_PII_ENTITIES: unknown {sorted(unknown)}; "
                f"choose from {', '.join(DEFAULT_ENTITIES)}"
            )
        if self.pii_redaction == "hash" and not self.pii_hash_key.get_secret_value():
            raise ValueError("pii_redaction=hash needs MOODPIPE_PII_HASH_KEY (a secret)")
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_username and self.kafka_password.get_secret_value()
        ):
            raise ValueError(
                f"kafka_security_protocol {self.kafka_security_protocol} needs "
                "MOODPIPE_KAFKA_USERNAME and MOODPIPE_KAFKA_PASSWORD"
            )
        if self.kafka_username and not self.kafka_security_protocol.startswith("SASL"):
            # Credentials that would silently not be used are a misconfiguration.
            raise ValueError(
                "MOODPIPE_KAFKA_USERNAME is set but MOODPIPE_KAFKA_SECURITY_PROTOCOL is "
                f"{self.kafka_security_protocol}; use SASL_PLAINTEXT or SASL_SSL"
            )
        if self.retry_max_backoff < self.retry_initial_backoff:
            raise ValueError("retry_max_backoff must be >= retry_initial_backoff")
        if self.dead_letter_max_bytes > self.producer_max_request_size - 8192:
            raise ValueError(
                "dead_letter_max_bytes must leave 8 KiB of producer_max_request_size "
                "for the record's key, headers and framing"
            )
        if self.min_created_at.tzinfo is None:
            raise ValueError("min_created_at needs a UTC offset, e.g. 2000-01-01T00:00:00Z")
        return self

    @cached_property
    def resolved_clickhouse_url(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def kafka_bootstrap(self) -> str:
        """host:port[,host:port] for plain Kafka clients."""
        return self.kafka_url.removeprefix("kafka://").replace(";", ",")

    @property
    def kafka(self) -> KafkaConnection:
        """Bootstrap servers and security for every Kafka client."""
        return KafkaConnection(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_username,
            password=self.kafka_password,
            ca_file=self.kafka_ca_file,
            cert_file=self.kafka_cert_file,
            key_file=self.kafka_key_file,
            key_password=self.kafka_key_password,
        )

    @staticmethod
    def language_list(value: str) -> tuple[str, ...]:
        return tuple(code.strip().lower() for code in value.split(",") if code.strip())

    @property
    def pii_entity_list(self) -> tuple[str, ...]:
        return tuple(e.strip() for e in self.pii_entities.split(",") if e.strip())

    @property
    def triton_tls_options(self) -> TritonTLS | None:
        if not self.triton_tls:
            return None
        return TritonTLS(self.triton_ca_file, self.triton_cert_file, self.triton_key_file)

    @property
    def kafka_port(self) -> int:
        return int(self.kafka_bootstrap.split(",")[0].rsplit(":", 1)[1])

    @property
    def local_kafka_plaintext_port(self) -> int:
        """The local broker's PLAINTEXT listener."""
        return self.local_kafka_port or self.kafka_port

    def local_kafka_sasl_credentials(self) -> list[tuple[str, str]]:
        raw = self.local_kafka_sasl_users.get_secret_value()
        pairs = [item.split(":", 1) for item in raw.split(",") if item.strip()]
        if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
            raise ValueError("MOODPIPE_LOCAL_KAFKA_SASL_USERS must be name:password[,...]")
        return [(name.strip(), password) for name, password in pairs]

    @property
    def triton_grpc_port(self) -> int:
        return int(self.triton_url.rsplit(":", 1)[1])

    @property
    def input_topics(self) -> tuple[str, str]:
        return (self.posts_topic, self.tickets_topic)

    @property
    def consumed_topics(self) -> list[str]:
        """The topics the worker group reads."""
        extra = [self.scored_topic, self.alerts_topic] if self.alerts_enabled else []
        return [*self.input_topics, *extra]

    @property
    def pipeline_topics(self) -> list[str]:
        """Every topic the workers read or write (besides Faust's changelogs)."""
        extra = [self.scored_topic, self.alerts_topic] if self.alerts_enabled else []
        return [*self.input_topics, self.dead_letter_topic, *extra]


def load_settings() -> Settings:
    return Settings()
