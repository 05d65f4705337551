"""What the deploy tests know about the repository: where the manifests are,
the services and their settings classes and gRPC descriptors, and the
rendered overlays (rendered once per test session)."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic_settings import BaseSettings

from maestro.compiler.v1 import compiler_service_pb2
from maestro.executor.v1 import executor_service_pb2
from maestro.policy.v1 import policy_service_pb2
from maestro.registry.v1 import registry_service_pb2
from maestro.runtime.settings import ALL_SERVICES, DEFAULT_GRPC_PORTS, DEFAULT_METRICS_PORTS
from maestro.scheduler.v1 import scheduler_service_pb2
from maestro.services.compiler.config import CompilerSettings
from maestro.services.executor.config import ExecutorSettings
from maestro.services.gateway.config import GatewaySettings
from maestro.services.policy.config import PolicySettings
from maestro.services.registry.config import RegistrySettings
from maestro.services.scheduler.config import SchedulerSettings
from maestro.services.signer.config import SignerSettings
from maestro.signer.v1 import signer_service_pb2
from tests.deploy.kustomize import Resource, load_kustomization, render, split_image

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
BASE = K8S / "base"
ENVOY_DIR = BASE / "envoy"
MIGRATE = BASE / "migrate"
OVERLAYS = ("dev", "prod")
RENDERINGS = ("base", *OVERLAYS)
"""Everything that is rendered: the base alone and each overlay."""

SERVICES: tuple[str, ...] = ALL_SERVICES
GRPC_SERVICES: tuple[str, ...] = tuple(DEFAULT_GRPC_PORTS)
DATABASE_SERVICES = ("registry", "scheduler", "policy", "signer")
MTLS_PORT = 15443
CERT_DIR = "/etc/maestro/tls"
BASE_ENVOY_IMAGE = "envoyproxy/envoy:v1.40-latest"

SETTINGS: dict[str, type[BaseSettings]] = {
    "compiler": CompilerSettings,
    "registry": RegistrySettings,
    "scheduler": SchedulerSettings,
    "executor": ExecutorSettings,
    "policy": PolicySettings,
    "signer": SignerSettings,
    "gateway": GatewaySettings,
}

# The generated module of each gRPC service's API, and the service the
# readiness probe asks about (the first one its server registers).
API_MODULES: dict[str, tuple[ModuleType, str]] = {
    "compiler": (compiler_service_pb2, "CompilerService"),
    "registry": (registry_service_pb2, "RegistryService"),
    "scheduler": (scheduler_service_pb2, "SchedulerService"),
    "executor": (executor_service_pb2, "ExecutorAdminService"),
    "policy": (policy_service_pb2, "PolicyService"),
    "signer": (signer_service_pb2, "SignerService"),
}


def main_grpc_service(service: str) -> str:
    """Full name of the gRPC service the readiness probe of ``service`` checks."""
    module, name = API_MODULES[service]
    return str(module.DESCRIPTOR.services_by_name[name].full_name)


def metrics_port(service: str) -> int:
    return DEFAULT_METRICS_PORTS.get(service, 8080)


def app_port(service: str) -> int:
    return DEFAULT_GRPC_PORTS.get(service, 8080)


def env_prefix(service: str) -> str:
    return str(SETTINGS[service].model_config.get("env_prefix", ""))


@functools.cache
def _rendered(name: str) -> tuple[Resource, ...]:
    return tuple(render(BASE if name == "base" else K8S / "overlays" / name))


def rendered(name: str) -> list[Resource]:
    """The objects of a rendering (``base``, ``dev``, ``prod``); a fresh copy."""
    return copy.deepcopy(list(_rendered(name)))


def find(resources: list[Resource], kind: str, name: str) -> Resource:
    matches = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
    return matches[0]


def pod_spec(workload: Resource) -> dict[str, Any]:
    return dict(workload["spec"]["template"]["spec"])


def app_container(deployment: Resource) -> dict[str, Any]:
    name = deployment["metadata"]["name"]
    (container,) = [c for c in pod_spec(deployment)["containers"] if c["name"] == name]
    return dict(container)


def envoy_container(deployment: Resource) -> dict[str, Any]:
    (container,) = [
        c for c in pod_spec(deployment).get("initContainers", []) if c["name"] == "envoy"
    ]
    return dict(container)


def all_containers(workload: Resource) -> Iterator[dict[str, Any]]:
    spec = pod_spec(workload)
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The container's env entries by name."""
    return {e["name"]: e for e in container.get("env", [])}


def image_service(image: str) -> str | None:
    """``registry`` for ``maestro/registry:tag``; None for other images."""
    name, _ = split_image(image)
    if name.startswith("maestro/"):
        return name.removeprefix("maestro/")
    return None


def resource_files() -> list[Path]:
    """Every manifest file a kustomization lists under ``resources``."""
    files: list[Path] = []
    for directory in (BASE, MIGRATE):
        for entry in load_kustomization(directory).get("resources", []):
            path = directory / entry
            if path.is_file():
                files.append(path)
    return files
