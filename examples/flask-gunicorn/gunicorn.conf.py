"""Gunicorn settings for the Flask test backend: 10 workers x 5 threads = 50 slots.

Override the address with HOST / PORT, e.g. `PORT=8001 ./run.sh`.
"""

import os
import shutil
import tempfile

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = 10
threads = 5
# gthread's heartbeat runs on the worker's main thread, so long ?ms= requests do not
# trip this; it only catches a worker whose main loop is stuck.
timeout = 120
# Idle keep-alive connections are closed after this many seconds. A proxy in front
# (Sluice's upstream pool) should close idle connections sooner than this, or it may
# reuse one the backend is closing at that moment.
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG")  # e.g. ACCESS_LOG=- to log requests to stdout

_created_state_dir = None


def on_starting(server):
    """Runs in the master before workers fork: every worker inherits the stats dir."""
    global _created_state_dir
    if not os.environ.get("SLUICE_BACKEND_STATE_DIR"):
        _created_state_dir = tempfile.mkdtemp(prefix="sluice-flask-stats-")
        os.environ["SLUICE_BACKEND_STATE_DIR"] = _created_state_dir


def on_exit(server):
    if _created_state_dir:
        shutil.rmtree(_created_state_dir, ignore_errors=True)
