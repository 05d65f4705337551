"""``python -m maestro.services.signer``: run the signer service alone."""

from maestro.runtime.server import run
from maestro.services.signer.config import SignerSettings
from maestro.services.signer.server import create_server

if __name__ == "__main__":
    run("signer", SignerSettings(), create_server)
