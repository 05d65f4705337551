"""Native gRPC TLS, for services run without an Envoy sidecar.

With a sidecar (``maestro up --envoy``, Kubernetes) services speak plaintext on
127.0.0.1 and Envoy does mTLS. Without one, a server can serve TLS itself and
require client certificates, and its clients present its own certificate: the
same files in the same layout (``tls.crt``, ``tls.key``, ``ca.crt`` from
``maestro certs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of one service: its certificate chain and key, and the CA that
    signs its peers (used to verify them, in both directions)."""

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None

    def server_credentials(self, *, require_client_auth: bool) -> grpc.ServerCredentials:
        """Credentials for ``add_secure_port``; with ``require_client_auth`` a
        client without a certificate signed by ``ca_file`` is refused in the
        handshake."""
        if require_client_auth and self.ca_file is None:
            raise ValueError("require_client_auth needs a CA file to verify clients with")
        return grpc.ssl_server_credentials(
            [(self.key_file.read_bytes(), self.cert_file.read_bytes())],
            root_certificates=self.ca_file.read_bytes() if self.ca_file else None,
            require_client_auth=require_client_auth,
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Client credentials: trust ``ca_file`` (or the system roots) and present
        this service's certificate, so the peer can verify who calls."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes() if self.ca_file else None,
            private_key=self.key_file.read_bytes(),
            certificate_chain=self.cert_file.read_bytes(),
        )
