"""Shared runtime for every Maestro service.

One place for the things each server needs the same way: typed settings,
domain errors and their mapping to ``google.rpc.Status``, call context (request
id and caller identity), structured logging, Prometheus RED metrics,
OpenTelemetry tracing, the ``grpc.aio`` server bootstrap with health and
reflection, and typed clients with deadlines and retries.
"""
