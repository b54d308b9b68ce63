"""A webhook receiver for tests: verifies every delivery with the independent Standard Webhooks
library (PyPI `standardwebhooks`) and answers as the path asks.

    python infra/webhook_receiver.py

It listens on 127.0.0.1 on an ephemeral port, prints `READY <port>` when it does, and keeps every
request it gets.
Paths (anything after the first segment names the endpoint, so one receiver serves many):
    /ok/...          200 after verifying
    /fail/...        500
    /gone/...        410
    /redirect/...    302 to /ok/... (a delivery must not follow it)
    /throttle/...    429 with Retry-After: 7
    /slow/MS/...     waits MS milliseconds, then 200
    /flaky/N/...     500 for the first N deliveries of each webhook-id, then 200
Control:
    POST /_secrets   {"path": "/ok/a", "secrets": ["whsec_..."]}  secrets to verify that path with
    GET  /_received  every request so far: [{path, headers, body, verified, error, answered, at}]
    POST /_reset     forgets what was received
A delivery whose signature does not verify is answered 400 and recorded with verified false.
"""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

LOCK = threading.Lock()
RECEIVED = []
SECRETS = {}
SEEN = {}


def secrets_for(path):
    best = None
    for prefix, secrets in SECRETS.items():
        if path.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, secrets)
    return best[1] if best else []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b"", headers=None):
        try:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The sender gave up (a timeout, or a test killed it): nothing to answer.
            pass

    def do_GET(self):
        if self.path == "/_received":
            with LOCK:
                body = json.dumps(RECEIVED).encode()
            return self.answer(200, body, {"Content-Type": "application/json"})
        self.answer(404)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path == "/_secrets":
            spec = json.loads(raw)
            with LOCK:
                SECRETS[spec["path"]] = spec["secrets"]
            return self.answer(204)
        if self.path == "/_reset":
            with LOCK:
                RECEIVED.clear()
                SEEN.clear()
            return self.answer(204)
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified, error = False, None
        secrets = secrets_for(self.path)
        for s in secrets:
            try:
                Webhook(s).verify(raw, headers)
                verified = True
                break
            except WebhookVerificationError as e:
                error = str(e)
        if not secrets:
            error = "no secret registered for this path"
        parts = self.path.strip("/").split("/")
        kind = parts[0]
        status, extra, body = 200, {}, b'{"ok":true}'
        if not verified:
            status, body = 400, json.dumps({"error": error}).encode()
        elif kind == "fail":
            status, body = 500, b"boom: " + b"x" * 6000
        elif kind == "gone":
            status = 410
        elif kind == "redirect":
            status, extra = 302, {"Location": "/ok/" + "/".join(parts[1:])}
        elif kind == "throttle":
            status, extra = 429, {"Retry-After": "7"}
        elif kind == "slow":
            time.sleep(int(parts[1]) / 1000.0)
        elif kind == "flaky":
            n = int(parts[1])
            key = (self.path, headers.get("webhook-id"))
            with LOCK:
                SEEN[key] = SEEN.get(key, 0) + 1
                seen = SEEN[key]
            if seen <= n:
                status = 500
        with LOCK:
            RECEIVED.append({
                "path": self.path,
                "headers": headers,
                "body": raw.decode("utf-8", "replace"),
                "verified": verified,
                "error": error if not verified else None,
                "answered": status,
                "at": time.time(),
            })
        self.answer(status, body, extra)


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"READY {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
