"""Prometheus RED metrics per RPC, and the /metrics HTTP endpoint.

Metric names follow the widely used go-grpc-prometheus conventions
(``grpc_server_handled_total`` and friends), so stock dashboards and alerts apply.
Each server has its own registry, so several services can share a process and
still each expose only their own metrics.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RpcMetrics:
    """RED metrics of one gRPC server."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        self.registry = registry
        labels = ("grpc_service", "grpc_method", "grpc_type")
        self.started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", labels, registry=registry
        )
        self.handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            (*labels, "grpc_code"),
            registry=registry,
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds",
            "Time from RPC start to its status, in seconds.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "grpc_server_in_flight", "RPCs being handled now.", labels, registry=registry
        )
        self.up = Gauge(
            "maestro_service_ready",
            "1 when the service's readiness checks pass, else 0.",
            ("service",),
            registry=registry,
        )
        self.up.labels(service=service).set(0)
        self.service = service

    def set_ready(self, ready: bool) -> None:
        self.up.labels(service=self.service).set(1 if ready else 0)


class MetricsServer:
    """The Prometheus text endpoint of one registry (``GET /metrics``)."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server: WSGIServer
        self._thread: threading.Thread
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.port: int = self._server.server_port

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=2)
