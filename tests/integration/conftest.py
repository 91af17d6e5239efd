# pytest finds fixtures here; they live in harness.py.
from harness import fresh_server, server  # noqa: F401
