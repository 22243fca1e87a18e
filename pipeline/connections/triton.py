"""How moodpipe reaches Triton's gRPC endpoint securely (kept free of heavy imports:
settings import it)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TritonTLS:
    """TLS for Triton's gRPC endpoint (tritonserver --grpc-use-ssl ...), PEM files."""

    ca_file: Path | None = None  # None: the system's roots
    cert_file: Path | None = None  # client certificate, for --grpc-use-ssl-mutual
    key_file: Path | None = None

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for tritonclient's gRPC clients (which take file paths).

        Missing files raise here, at start-up: a configuration error must not be
        retried as if Triton were down."""
        for what, path in (("CA", self.ca_file), ("certificate", self.cert_file),
                           ("key", self.key_file)):  # fmt: skip
            if path is not None and not path.is_file():
                raise FileNotFoundError(f"Triton TLS {what} file {path} does not exist")
        return {
            "ssl": True,
            "root_certificates": str(self.ca_file) if self.ca_file else None,
            "private_key": str(self.key_file) if self.key_file else None,
            "certificate_chain": str(self.cert_file) if self.cert_file else None,
        }
