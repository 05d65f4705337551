"""The compiler service: stateless validation, digest and compilation of workflows."""
