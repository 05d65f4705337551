"""OpenTelemetry tracing: one tracer provider per service, exporter by setting.

Services in one process each get their own provider (and so their own
``service.name``), passed explicitly to the gRPC instrumentation rather than set
globally. Context crosses process boundaries as W3C ``traceparent`` metadata,
the OpenTelemetry default propagator.
"""

from __future__ import annotations

from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)


def build_tracer_provider(service: str, exporter: str, otlp_endpoint: str = "") -> TracerProvider:
    """A provider named ``maestro-<service>`` exporting to ``exporter``.

    ``none`` still creates spans (so trace ids reach logs and peers) but exports
    nothing; ``console`` prints them; ``otlp`` sends them to a collector.
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: f"maestro-{service}"}))
    span_exporter: SpanExporter | None = None
    if exporter == "console":
        span_exporter = ConsoleSpanExporter()
    elif exporter == "otlp":
        # Imported only when used: the OTLP exporter pulls in a second gRPC stack.
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        span_exporter = OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True)
    if span_exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return provider
