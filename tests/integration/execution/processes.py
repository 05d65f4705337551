"""Service processes the crash tests can SIGKILL: ``python -m
maestro.services.<svc>`` with settings in the environment, loopback ports,
logs in a file, and PR_SET_PDEATHSIG so nothing outlives the test run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from maestro.runtime.clients import probe_health
from tests.conftest import free_port

_PR_SET_PDEATHSIG = 1


# Run in the child after exec: no Python runs between fork and exec (the test
# process has gRPC threads, and a preexec_fn there can crash the child), so
# subprocess can use vfork.
_LAUNCHER = (
    "import ctypes, runpy, signal, sys; "
    f"ctypes.CDLL('libc.so.6', use_errno=True).prctl({_PR_SET_PDEATHSIG}, signal.SIGKILL); "
    "runpy.run_module(sys.argv.pop(1), run_name='__main__', alter_sys=True)"
)


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
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _LAUNCHER, f"maestro.services.{self.service}"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_serving(self, timeout: float = 20.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await probe_health(self.address, timeout=0.5) != "SERVING":
            assert self.process is not None
            if self.process.poll() is not None or loop.time() > deadline:
                raise AssertionError(
                    f"{self.service} did not become SERVING:\n{self.log.read_text()[-4000:]}"
                )
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no goodbyes."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
