"""``python -m maestro.services.registry``: run the registry service alone."""

from maestro.runtime.server import run
from maestro.services.registry.config import RegistrySettings
from maestro.services.registry.server import create_server

if __name__ == "__main__":
    run("registry", RegistrySettings(), create_server)
