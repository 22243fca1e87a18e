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
        def read(path: Path | None) -> bytes | None:
            return path.read_bytes() if path else None

        return {
            "ssl": True,
            "root_certificates": read(self.ca_file),
            "private_key": read(self.key_file),
            "certificate_chain": read(self.cert_file),
        }
