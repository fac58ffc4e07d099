"""hlx-backend-example: a small, complete HLX backend to learn from (see README.md)."""
from hlx_backend_example.backend import ExampleBackend, ExampleSession

__all__ = ["ExampleBackend", "ExampleSession"]
