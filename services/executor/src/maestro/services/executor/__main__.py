"""``python -m maestro.services.executor``: run the executor service alone."""

from maestro.runtime.server import run
from maestro.services.executor.config import ExecutorSettings
from maestro.services.executor.server import create_server

if __name__ == "__main__":
    run("executor", ExecutorSettings(), create_server)
