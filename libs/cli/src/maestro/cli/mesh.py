"""Knowledge of the whole mesh: which services exist, how each starts, where
each listens, and how peers are wired to each other."""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from maestro.runtime.settings import ALL_SERVICES, GRPC_SERVICES

# Which peer addresses each service's settings take (setting name -> peer).
PEERS: dict[str, dict[str, str]] = {
    "registry": {
        "compiler_address": "compiler",
        "policy_address": "policy",
        "signer_address": "signer",
    },
    "scheduler": {
        "registry_address": "registry",
        "policy_address": "policy",
        "signer_address": "signer",
    },
    "executor": {"scheduler_address": "scheduler"},
    "signer": {"policy_address": "policy"},
    "gateway": {f"{svc}_address": svc for svc in GRPC_SERVICES},
}


@dataclass(frozen=True)
class ServiceEntry:
    """How to configure and start one service."""

    name: str

    @property
    def module(self) -> str:
        return f"maestro.services.{self.name}"

    def settings_class(self) -> type[Any]:
        config = importlib.import_module(f"{self.module}.config")
        return getattr(config, f"{self.name.capitalize()}Settings")  # type: ignore[no-any-return]

    def create_server(self) -> Callable[[Any], Awaitable[Any]]:
        server = importlib.import_module(f"{self.module}.server")
        return server.create_server  # type: ignore[no-any-return]

    def env_prefix(self) -> str:
        return f"MAESTRO_{self.name.upper()}_"


SERVICES = {name: ServiceEntry(name) for name in ALL_SERVICES}


def load_settings(name: str, data_dir: Path | None = None) -> Any:
    """The service's settings from the environment, with ``data_dir`` applied."""
    cls = SERVICES[name].settings_class()
    if data_dir is not None and "data_dir" in cls.model_fields:
        return cls(data_dir=data_dir)
    return cls()


def grpc_address(settings: Any) -> str:
    return f"{settings.host}:{settings.port}"


def child_environment(data_dir: Path) -> dict[str, dict[str, str]]:
    """Per-service environment for a mesh of separate processes.

    Ports come from each service's own settings (so ``MAESTRO_<SVC>_PORT`` still
    works); every peer address is derived from the peer's settings, so a moved
    port is followed by everyone who calls it.
    """
    settings = {name: load_settings(name, data_dir) for name in ALL_SERVICES}
    env: dict[str, dict[str, str]] = {}
    for name, entry in SERVICES.items():
        prefix = entry.env_prefix()
        values = {f"{prefix}PORT": str(settings[name].port)}
        if name in GRPC_SERVICES or name == "gateway":
            # the gateway's data dir holds the dev JWT key `maestro dev-token` writes
            values[f"{prefix}DATA_DIR"] = str(data_dir)
        if name in GRPC_SERVICES and settings[name].metrics_port is not None:
            values[f"{prefix}METRICS_PORT"] = str(settings[name].metrics_port)
        for setting, peer in PEERS.get(name, {}).items():
            values[f"{prefix}{setting.upper()}"] = grpc_address(settings[peer])
        env[name] = values
    return env
