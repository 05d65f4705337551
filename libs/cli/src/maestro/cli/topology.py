"""The mesh topology (deploy/mesh/topology.yaml): services, ports, who calls
whom, which RPCs are idempotent, timeouts, retry budgets.

It is the single source of the Envoy configurations (:mod:`maestro.cli.envoy_config`).
Whatever it says that the code also knows is checked against the code by
:func:`check`: the RPC lists against the protos' ``idempotency_level``, ports
against the services' default settings, the trust domain against the runtime,
and the peers the services are wired to against ``calls``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from pydantic import BaseModel, ConfigDict, Field, model_validator

from maestro.cli.mesh import PEERS
from maestro.runtime.clients import idempotent_methods
from maestro.runtime.context import TRUST_DOMAIN
from maestro.runtime.settings import DEFAULT_GATEWAY_PORT, DEFAULT_GRPC_PORTS, GRPC_SERVICES

TOPOLOGY_RELATIVE = Path("deploy/mesh/topology.yaml")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryBudget(_Model):
    budget_percent: float = Field(gt=0, le=100)
    min_retry_concurrency: int = Field(ge=0)


class HealthCheck(_Model):
    interval_seconds: float = Field(gt=0)
    timeout_seconds: float = Field(gt=0)
    unhealthy_threshold: int = Field(ge=1)
    healthy_threshold: int = Field(ge=1)


class OutlierDetection(_Model):
    consecutive_5xx: int = Field(ge=1)
    consecutive_gateway_failure: int = Field(ge=1)
    interval_seconds: float = Field(gt=0)
    base_ejection_seconds: float = Field(gt=0)
    max_ejection_percent: int = Field(ge=0, le=100)


class Defaults(_Model):
    timeout_seconds: float = Field(gt=0)
    per_try_timeout_seconds: float = Field(gt=0)
    num_retries: int = Field(ge=0)
    retry_on: tuple[str, ...]
    retry_backoff_base_seconds: float = Field(gt=0)
    retry_backoff_max_seconds: float = Field(gt=0)
    retry_budget: RetryBudget
    health_check: HealthCheck
    outlier_detection: OutlierDetection


class Rpcs(_Model):
    """The methods of one gRPC service, split by whether a retry is safe."""

    idempotent: tuple[str, ...] = ()
    non_idempotent: tuple[str, ...] = ()
    timeout_seconds: dict[str, float] = Field(
        default_factory=dict, description="Per-method overall timeout (e.g. long polls)."
    )


class Service(_Model):
    port: int = Field(ge=1, le=65535)
    http: bool = Field(False, description="An HTTP service: no inbound mesh listener.")
    calls: tuple[str, ...] = ()
    rpcs: dict[str, Rpcs] = Field(default_factory=dict)
    timeout_seconds: float | None = Field(None, gt=0)
    per_try_timeout_seconds: float | None = Field(None, gt=0)
    num_retries: int | None = Field(None, ge=0)

    @property
    def main_grpc_service(self) -> str:
        """The gRPC service name health checks ask about (the first listed)."""
        return next(iter(self.rpcs), "")


class Client(_Model):
    calls: tuple[str, ...] = ()


class K8s(_Model):
    namespace: str
    cluster_domain: str
    inbound_port: int
    outbound_port: int
    health_port: int
    admin_port: int
    cert_dir: str


class Local(_Model):
    front_port: int
    admin_port: int
    inbound_ports: dict[str, int]
    outbound_ports: dict[str, int]


class Topology(_Model):
    """The parsed topology file; ``model_validator`` checks internal consistency."""

    version: int
    trust_domain: str
    defaults: Defaults
    services: dict[str, Service]
    clients: dict[str, Client] = Field(default_factory=dict)
    k8s: K8s
    local: Local

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        problems = []
        for name, calls in self.calls().items():
            for callee in calls:
                target = self.services.get(callee)
                if target is None:
                    problems.append(f"{name} calls unknown service {callee!r}")
                elif target.http:
                    problems.append(f"{name} calls {callee}, which has no gRPC listener")
        for name, service in self.services.items():
            if not service.http and not service.rpcs:
                problems.append(f"{name}: a gRPC service needs its rpcs")
            if service.calls and name not in self.local.outbound_ports:
                problems.append(f"local.outbound_ports has no port for {name}")
            if not service.http and name not in self.local.inbound_ports:
                problems.append(f"local.inbound_ports has no port for {name}")
        overlap = set(self.services) & set(self.clients)
        if overlap:
            problems.append(f"names used both as service and client: {sorted(overlap)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def grpc_services(self) -> dict[str, Service]:
        """Services with an inbound listener (everything but HTTP ones)."""
        return {n: s for n, s in self.services.items() if not s.http}

    def callers_of(self, service: str) -> list[str]:
        """Identities allowed to call ``service``: services and clients whose
        ``calls`` name it, in file order."""
        return [name for name, calls in self.calls().items() if service in calls]

    def calls(self) -> dict[str, tuple[str, ...]]:
        """Whom every identity (services, then clients) calls."""
        return {
            **{name: node.calls for name, node in self.services.items()},
            **{name: node.calls for name, node in self.clients.items()},
        }

    def identities(self) -> list[str]:
        """Every identity that gets a certificate: services, then clients."""
        return [*self.services, *self.clients]


def find_topology(start: Path | None = None) -> Path:
    """deploy/mesh/topology.yaml in ``start`` (default: the working directory)
    or a parent of it, else next to this source tree (an editable install)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / TOPOLOGY_RELATIVE
        if candidate.is_file():
            return candidate
    for folder in Path(__file__).resolve().parents:
        candidate = folder / TOPOLOGY_RELATIVE
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {TOPOLOGY_RELATIVE} here or above {here}; pass --topology")


def load_topology(path: Path | None = None) -> Topology:
    """Parses and validates a topology file (default: :func:`find_topology`)."""
    path = path or find_topology()
    data: Any = yaml.safe_load(path.read_text())
    return Topology.model_validate(data)


def proto_services(service: str) -> dict[str, ServiceDescriptor]:
    """The gRPC services of ``maestro.<service>.v1``, by full name."""
    module = importlib.import_module(f"maestro.{service}.v1.{service}_service_pb2")
    return {svc.full_name: svc for svc in module.DESCRIPTOR.services_by_name.values()}


def derived_rpcs(service: str) -> dict[str, Rpcs]:
    """What the protos say the ``rpcs`` section of ``service`` must hold."""
    result = {}
    for full_name, descriptor in proto_services(service).items():
        idempotent = idempotent_methods(descriptor)
        result[full_name] = Rpcs(
            idempotent=tuple(idempotent),
            non_idempotent=tuple(m.name for m in descriptor.methods if m.name not in idempotent),
        )
    return result


def streaming_methods(grpc_service: str) -> set[str]:
    """Methods of a gRPC service that stream (no overall timeout for them)."""
    package = grpc_service.split(".")
    descriptor = proto_services(package[1])[grpc_service]
    methods: list[MethodDescriptor] = list(descriptor.methods)
    return {m.name for m in methods if m.server_streaming or m.client_streaming}


def check(topology: Topology) -> list[str]:
    """Disagreements between the topology and the code; empty when they agree."""
    problems = []
    if topology.trust_domain != TRUST_DOMAIN:
        problems.append(
            f"trust_domain is {topology.trust_domain!r}, the runtime uses {TRUST_DOMAIN!r}"
        )
    expected_services = {*GRPC_SERVICES, "gateway"}
    if set(topology.services) != expected_services:
        problems.append(
            f"services are {sorted(topology.services)}, the mesh has {sorted(expected_services)}"
        )
    for name, node in topology.services.items():
        default_port = DEFAULT_GRPC_PORTS.get(name, DEFAULT_GATEWAY_PORT)
        if node.port != default_port:
            problems.append(f"{name}: port {node.port}, its settings default to {default_port}")
        for peer in PEERS.get(name, {}).values():
            if peer not in node.calls:
                problems.append(f"{name} is wired to call {peer}, but its calls omit it")
        if not node.http:
            problems.extend(_rpc_problems(name, node))
    return problems


def _rpc_problems(name: str, node: Service) -> list[str]:
    """Where the ``rpcs`` of one service disagree with its protos."""
    expected = derived_rpcs(name)
    problems = []
    if set(node.rpcs) != set(expected):
        problems.append(
            f"{name}: rpcs lists {sorted(node.rpcs)}, the protos define {sorted(expected)}"
        )
    for grpc_service, rpcs in expected.items():
        listed = node.rpcs.get(grpc_service)
        if listed is None:
            continue
        for kind in ("idempotent", "non_idempotent"):
            have, want = getattr(listed, kind), getattr(rpcs, kind)
            if set(have) != set(want):
                problems.append(
                    f"{grpc_service}: {kind} is {sorted(have)}, the protos' "
                    f"idempotency_level says {sorted(want)}"
                )
        unknown = set(listed.timeout_seconds) - {*rpcs.idempotent, *rpcs.non_idempotent}
        if unknown:
            problems.append(f"{grpc_service}: timeout_seconds for unknown {sorted(unknown)}")
    return problems
