"""``python -m maestro.services.compiler``: run the compiler service alone."""

from maestro.runtime.server import run
from maestro.services.compiler.config import CompilerSettings
from maestro.services.compiler.server import create_server

if __name__ == "__main__":
    run("compiler", CompilerSettings(), create_server)
