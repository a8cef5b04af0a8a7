"""Flask twin of `sluice backend`: the same endpoints and semantics, run under Gunicorn.

Gunicorn provides the slot model for real (10 workers x 5 threads = 50 slots, see
gunicorn.conf.py); this module only does the work and keeps the /stats counters, which
are shared by every worker process and thread through a small flock-guarded JSON file.

Settings (environment): LATENCY_MS (100), REPORT_LATENCY_MS (2000), ERROR_RATE (0),
STALL_RATE (0), STALL_MS (5000), SLUICE_BACKEND_STATE_DIR (set by gunicorn.conf.py).
"""

import fcntl
import hashlib
import json
import os
import random
import socket
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

from flask import Flask, Response, request

LATENCY_MS = int(os.environ.get("LATENCY_MS", "100"))
REPORT_LATENCY_MS = int(os.environ.get("REPORT_LATENCY_MS", "2000"))
ERROR_RATE = float(os.environ.get("ERROR_RATE", "0"))
STALL_RATE = float(os.environ.get("STALL_RATE", "0"))
STALL_MS = int(os.environ.get("STALL_MS", "5000"))

CONTROL_PATHS = {"/stats", "/health", "/stats/reset"}
KEYS_KEPT = 1000
# by_path keeps the most recently first-seen paths only: the whole state is rewritten on
# every request, so an unbounded map (a load of unique paths) would make the counters,
# not the app, the bottleneck.
PATHS_KEPT = 200
# Same bytes as src/testing/backend-http.ts, so ?bytes=N is identical in both backends.
FILLER_LINE = b"sluice test backend filler 0123456789 abcdefghijklmnopqrstuvwxy\n"
FIXED_LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
MAX_FILLER_BYTES = 256 * 1024 * 1024


class SharedStats:
    """Counters shared across Gunicorn worker processes and their threads.

    Every update takes an exclusive flock on a lock file (flock conflicts between separate
    open() calls even inside one process, so threads are covered too) and rewrites a small
    JSON file. Idempotency keys go to an append-only file so the JSON stays small.
    """

    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.state_path = os.path.join(directory, "stats.json")
        self.keys_path = os.path.join(directory, "idempotency-keys.log")
        self.lock_path = os.path.join(directory, "stats.lock")

    @contextmanager
    def _locked(self):
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self):
        try:
            with open(self.state_path) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return {"inflight_now": 0, "inflight_max": 0, "total": 0, "abandoned": 0,
                    "by_path": {}, "last_traceparent": None, "live_counter": 0, "keys_logged": 0}

    def _write(self, state):
        with open(self.state_path, "w") as f:
            json.dump(state, f)

    def _update(self, change):
        with self._locked():
            state = self._read()
            result = change(state)
            self._write(state)
            return result

    def start(self, path, traceparent, idempotency_key, abandoned):
        def change(s):
            s["inflight_now"] += 1
            s["inflight_max"] = max(s["inflight_max"], s["inflight_now"])
            s["total"] += 1
            by_path = s["by_path"]
            by_path[path] = by_path.get(path, 0) + 1
            while len(by_path) > PATHS_KEPT:
                del by_path[next(iter(by_path))]
            s["last_traceparent"] = traceparent
            s["abandoned"] += 1 if abandoned else 0
            if idempotency_key is not None:
                self._log_key(s, idempotency_key)
        self._update(change)

    def _log_key(self, s, key):
        with open(self.keys_path, "a") as f:
            f.write(json.dumps(key) + "\n")
        s["keys_logged"] += 1
        if s["keys_logged"] > 2 * KEYS_KEPT:  # compact now and then, not on every write
            keys = self._keys()
            with open(self.keys_path, "w") as f:
                f.writelines(json.dumps(k) + "\n" for k in keys)
            s["keys_logged"] = len(keys)

    def _keys(self):
        try:
            with open(self.keys_path) as f:
                return [json.loads(line) for line in f.readlines()[-KEYS_KEPT:]]
        except FileNotFoundError:
            return []

    def finish(self, abandoned):
        def change(s):
            s["inflight_now"] -= 1
            s["abandoned"] += 1 if abandoned else 0
        self._update(change)

    def next_live_counter(self):
        def change(s):
            s["live_counter"] += 1
            return s["live_counter"]
        return self._update(change)

    def snapshot(self):
        with self._locked():
            s = self._read()
            keys = self._keys()
        return {k: s[k] for k in ("inflight_now", "inflight_max", "total", "abandoned",
                                  "by_path", "last_traceparent")} | {"idempotency_keys": keys}

    def reset(self):
        def change(s):
            s.update(inflight_max=s["inflight_now"], total=0, abandoned=0, by_path={},
                     last_traceparent=None, live_counter=0, keys_logged=0)
            open(self.keys_path, "w").close()
        self._update(change)


def client_gone(environ):
    """True when the client already closed its side (peek sees EOF without consuming)."""
    sock = environ.get("gunicorn.socket")
    if sock is None:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


class SlotAccounting:
    """WSGI middleware: a request holds its Gunicorn thread from app entry until the
    server has written the last chunk and calls close(); that is the slot we count."""

    def __init__(self, app, stats):
        self.app = app
        self.stats = stats

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "") in CONTROL_PATHS:
            return self.app(environ, start_response)
        gone_at_start = client_gone(environ)
        self.stats.start(environ.get("PATH_INFO", ""), environ.get("HTTP_TRACEPARENT"),
                         environ.get("HTTP_IDEMPOTENCY_KEY"), gone_at_start)
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self.stats.finish(abandoned=False)
            raise
        return _TrackedBody(body, environ, self.stats, gone_at_start)


class _TrackedBody:
    """Wraps the response iterable; Gunicorn calls close() exactly when it is done with
    the request (after the last write, or after a failed one), which frees the slot."""

    def __init__(self, body, environ, stats, gone_at_start):
        self.body, self.environ, self.stats = body, environ, stats
        self.gone_at_start = gone_at_start
        self.gone_before_write = False
        self.written = False
        self.closed = False

    def __iter__(self):
        # Checked before the first write: a write into a closed socket can still
        # "succeed" into kernel buffers, so EOF on the socket is the better signal.
        self.gone_before_write = client_gone(self.environ)
        for chunk in self.body:
            yield chunk
        self.written = True

    def close(self):
        if self.closed:
            return
        self.closed = True
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            lost = self.gone_before_write or not self.written
            self.stats.finish(abandoned=lost and not self.gone_at_start)


app = Flask(__name__)
if not os.environ.get("SLUICE_BACKEND_STATE_DIR"):
    # Run without gunicorn.conf.py (e.g. `flask run`): one process, private state.
    os.environ["SLUICE_BACKEND_STATE_DIR"] = tempfile.mkdtemp(prefix="sluice-flask-stats-")
STATS = SharedStats(os.environ["SLUICE_BACKEND_STATE_DIR"])
app.wsgi_app = SlotAccounting(app.wsgi_app, STATS)


class BadQuery(ValueError):
    pass


def _int_arg(args, name, maximum):
    raw = args.get(name)
    if raw is None:
        return None
    if not raw.isdigit() or int(raw) > maximum:
        raise BadQuery(f"{name} must be an integer within 0..{maximum}")
    return int(raw)


def _printable(value, name):
    if value == "" or any(not (c == "\t" or " " <= c <= "~") for c in value):
        raise BadQuery(f"{name} has invalid characters")
    return value


def parse_overrides(args):
    o = {"ms": _int_arg(args, "ms", 3_600_000), "status": _int_arg(args, "status", 599),
         "bytes": _int_arg(args, "bytes", MAX_FILLER_BYTES),
         "set_cookie": args.get("set_cookie") == "1", "last_modified": args.get("last_modified") == "1",
         "cache_control": args.get("cache_control"), "vary": args.get("vary"), "etag": args.get("etag")}
    if o["status"] is not None and o["status"] < 200:
        raise BadQuery("status must be within 200..599")
    if o["cache_control"] is not None and o["cache_control"] != "":
        _printable(o["cache_control"], "cache_control")
    if o["vary"] is not None and not all(c.isalnum() or c in "!#$%&'*+.^_`|~-" for c in o["vary"] or "?"):
        raise BadQuery("vary must be a header name")
    if o["etag"] is not None:
        tag = _printable(o["etag"], "etag")
        o["etag"] = tag if tag.startswith('"') or tag.startswith('W/"') else f'"{tag}"'
    return o


def json_bytes(value):
    # Compact and insertion-ordered like JSON.stringify, so bodies match the Node backend.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(status, value, headers=None):
    return Response(json_bytes(value), status=status, headers=headers or {}, content_type="application/json")


def drain_body():
    digest, size = hashlib.sha256(), 0
    while chunk := request.stream.read(64 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def item_body(item_id):
    h = hashlib.sha256(f"item:{item_id}".encode()).digest()
    return {"id": item_id, "name": f"Item {item_id}",
            "price_cents": int.from_bytes(h[0:4], "big") % 100_000,
            "stock": int.from_bytes(h[4:6], "big") % 500,
            "tags": [t for i, t in enumerate(["alpha", "beta", "gamma", "delta"]) if (h[6] >> i) & 1],
            "description": f"Deterministic test item {item_id} from the sluice test backend."}


def not_modified(etag, last_modified):
    inm = request.headers.get("If-None-Match")
    if inm is not None:
        if etag is None:
            return False
        if inm.strip() == "*":
            return True
        opaque = lambda t: t.strip().removeprefix("W/")  # noqa: E731
        return any(opaque(t) == opaque(etag) for t in inm.split(","))
    ims = request.headers.get("If-Modified-Since")
    if ims is None or last_modified is None:
        return False
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(ims)
    except (TypeError, ValueError):
        return False


def api(route, item_id=None):
    """One /api request as a Gunicorn thread runs it: read body, compute, answer."""
    body_bytes, body_sha = drain_body()
    try:
        o = parse_overrides(request.args)
    except BadQuery as err:
        return json_response(400, {"error": "bad_query", "detail": str(err)})
    default_ms = {"reports": REPORT_LATENCY_MS, "upload": 0}.get(route, LATENCY_MS)
    time.sleep((o["ms"] if o["ms"] is not None else default_ms) / 1000)
    if STALL_RATE > 0 and random.random() < STALL_RATE:
        time.sleep(STALL_MS / 1000)
    if ERROR_RATE > 0 and random.random() < ERROR_RATE:
        return json_response(500, {"error": "injected_error", "path": request.path})

    status, headers, strong = 200, {}, False
    if route == "items":
        body, headers, strong = item_body(item_id), {"Cache-Control": "public, max-age=5"}, True
    elif route == "live":
        body = {"id": item_id, "counter": STATS.next_live_counter(),
                "served_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
        headers = {"Cache-Control": "no-store"}
    elif route == "reports":
        status = 201
        body = {"report_id": str(uuid.uuid4()), "status": "done", "body_bytes": body_bytes,
                "body_sha256": body_sha, "idempotency_key": request.headers.get("Idempotency-Key")}
    elif route == "upload":
        body = {"bytes": body_bytes, "sha256": body_sha}
    else:
        body = {"method": request.method, "path": request.path, "query": request.args.to_dict(),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body_bytes": body_bytes, "body_sha256": body_sha}

    if o["vary"]:
        headers["Vary"] = o["vary"]
        body["vary"] = {o["vary"]: request.headers.get(o["vary"])}
    if o["cache_control"] is not None:
        headers["Cache-Control"] = o["cache_control"]
    if o["set_cookie"]:
        headers["Set-Cookie"] = f"sluice_test={uuid.uuid4()}; Path=/; HttpOnly"
    if o["last_modified"]:
        headers["Last-Modified"] = FIXED_LAST_MODIFIED
    if o["bytes"] is not None:
        payload, content_type = (FILLER_LINE * (o["bytes"] // 64 + 1))[: o["bytes"]], "text/plain; charset=utf-8"
    else:
        payload, content_type = json_bytes(body), "application/json"
    etag = o["etag"] or (f'"{hashlib.sha256(payload).hexdigest()[:32]}"' if strong else None)
    if etag:
        headers["ETag"] = etag
    status = o["status"] or status
    if request.method in ("GET", "HEAD") and status == 200 and not_modified(etag, headers.get("Last-Modified")):
        return Response(status=304, headers=headers)
    return Response(payload, status=status, headers=headers, content_type=content_type)


@app.route("/api/items/<item_id>", methods=["GET"])
def items(item_id):
    return api("items", item_id)


@app.route("/api/live/<item_id>", methods=["GET"])
def live(item_id):
    return api("live", item_id)


@app.route("/api/reports", methods=["POST"])
def reports():
    return api("reports")


@app.route("/api/upload", methods=["POST"])
def upload():
    return api("upload")


@app.route("/api/echo", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def echo():
    return api("echo")


@app.route("/health")
def health():
    return Response("ok", content_type="text/plain; charset=utf-8")


@app.route("/stats")
def stats():
    return json_response(200, STATS.snapshot(), {"Cache-Control": "no-store"})


@app.route("/stats/reset", methods=["POST"])
def stats_reset():
    STATS.reset()
    return Response(status=204)


@app.errorhandler(404)
def not_found(_err):
    return json_response(404, {"error": "not_found", "path": request.path})


@app.errorhandler(405)
def method_not_allowed(err):
    allow = getattr(err, "valid_methods", None) or []
    return json_response(405, {"error": "method_not_allowed", "allow": allow}, {"Allow": ", ".join(allow)})


@app.after_request
def echo_traceparent(response):
    traceparent = request.headers.get("traceparent")
    if traceparent is not None:
        response.headers["x-backend-traceparent"] = traceparent
    return response
