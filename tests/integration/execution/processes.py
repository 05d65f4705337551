"""Service processes the crash tests can SIGKILL: ``python -m
maestro.services.<svc>`` with settings in the environment, loopback ports,
logs in a file, and PR_SET_PDEATHSIG so nothing outlives the test run."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests import processes
from tests.conftest import free_port


@dataclass
class ServiceProcess:
    """One service in its own process; restartable on the same port."""

    service: str
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        prefix = f"MAESTRO_{self.service.upper()}_"
        env = {
            **os.environ,
            f"{prefix}HOST": "127.0.0.1",
            f"{prefix}PORT": str(self.port),
            f"{prefix}METRICS_PORT": "0",
            f"{prefix}LOG_LEVEL": "INFO",
            **self.env,
        }
        self.process = processes.spawn(f"maestro.services.{self.service}", env=env, log=self.log)

    async def wait_serving(self, timeout: float = 20.0) -> None:
        assert self.process is not None
        await processes.wait_serving(self.address, self.process, self.log, timeout)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no goodbyes."""
        assert self.process is not None
        processes.kill(self.process)

    def stop(self) -> None:
        processes.stop(self.process, timeout=10)
