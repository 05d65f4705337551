"""Child processes of tests and benchmarks that never outlive their parent:
``python -m <module>`` (or ``python -c <code> ...``) with PR_SET_PDEATHSIG set
*after* exec, so no Python runs between fork and exec (the parent has gRPC
threads, and a ``preexec_fn`` there occasionally crashed the child) and
subprocess can use vfork; stopped by PID."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from maestro.runtime.clients import probe_health

_PR_SET_PDEATHSIG = 1
_LAUNCHER = (
    "import ctypes, runpy, signal, sys; "
    f"ctypes.CDLL('libc.so.6', use_errno=True).prctl({_PR_SET_PDEATHSIG}, signal.SIGKILL); "
    "target = sys.argv.pop(1); "
    "exec(sys.argv.pop(1)) if target == '-c' "
    "else runpy.run_module(target, run_name='__main__', alter_sys=True)"
)


def spawn(
    target: str,
    *args: str,
    env: Mapping[str, str],
    log: Path,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Starts ``python -m target args...`` (or, with ``target`` ``"-c"``,
    ``python -c args[0] args[1:]...``), output appended to ``log``; the child
    is SIGKILLed if this process dies."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, target, *args],
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL, by PID: no shutdown hooks, no goodbyes."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running(
    target: str, *args: str, env: Mapping[str, str], log: Path, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """:func:`spawn` for the ``with`` block; :func:`stop` at its end."""
    process = spawn(target, *args, env=env, log=log, cwd=cwd)
    try:
        yield process
    finally:
        stop(process)


async def wait_serving(
    address: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0
) -> None:
    """Until the gRPC health of the server at ``address`` is SERVING.

    Raises:
        AssertionError: the process ended or ``timeout`` passed (with the
            log's tail).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while await probe_health(address, timeout=0.5) != "SERVING":
        if process.poll() is not None or loop.time() > deadline:
            tail = await asyncio.to_thread(log.read_text, errors="replace")
            raise AssertionError(f"{address} did not become SERVING:\n{tail[-4000:]}")
        await asyncio.sleep(0.05)
