"""The ``maestro`` command-line interface."""
