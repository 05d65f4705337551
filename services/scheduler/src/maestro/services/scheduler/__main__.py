"""``python -m maestro.services.scheduler``: run the scheduler service alone."""

from maestro.runtime.server import run
from maestro.services.scheduler.config import SchedulerSettings
from maestro.services.scheduler.server import create_server

if __name__ == "__main__":
    run("scheduler", SchedulerSettings(), create_server)
