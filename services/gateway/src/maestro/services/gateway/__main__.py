"""``python -m maestro.services.gateway``: run the gateway alone."""

from maestro.runtime.server import run
from maestro.services.gateway.config import GatewaySettings
from maestro.services.gateway.server import create_server

if __name__ == "__main__":
    run("gateway", GatewaySettings(), create_server)
