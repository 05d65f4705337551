"""``python -m maestro.services.policy``: run the policy service alone."""

from maestro.runtime.server import run
from maestro.services.policy.config import PolicySettings
from maestro.services.policy.server import create_server

if __name__ == "__main__":
    run("policy", PolicySettings(), create_server)
