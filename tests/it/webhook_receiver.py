#!/usr/bin/env python3
"""A webhook receiver for smshub's tests: a real HTTP server that verifies every delivery
with the PyPI `standardwebhooks` library (never with code of ours) and records it.

Usage: webhook_receiver.py PORT SECRET [SECRET ...]   (PORT 0: any; the port is printed)

POST /hook        a delivery: verified against each secret, recorded, answered per the mode
POST /control     {"mode": "ok"|"fail"|"down"|"gone", "delay_ms": [lo, hi], "fail_rate": 0.1}
GET  /log         {"records": [...]}: one per delivery received, in arrival order
Exit code 3 when `standardwebhooks` is missing (the test decides whether to skip).
"""

import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from standardwebhooks.webhooks import Webhook
except ImportError:
    print("standardwebhooks missing", flush=True)
    sys.exit(3)

STATE = {"mode": "ok", "delay_ms": [0, 0], "fail_rate": 0.0}
RECORDS = []
LOCK = threading.Lock()
SECRETS = sys.argv[2:]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length)

    def answer(self, status, payload=None):
        data = json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the hub was killed mid-request: it sends again after its restart

    def do_GET(self):
        if self.path == "/log":
            with LOCK:
                self.answer(200, {"records": list(RECORDS)})
        else:
            self.answer(404)

    def do_POST(self):
        raw = self.body()
        if self.path == "/control":
            with LOCK:
                STATE.update(json.loads(raw or b"{}"))
            self.answer(200, STATE)
            return
        if self.path.split("?")[0] != "/hook":
            self.answer(404)
            return
        received = time.time()
        headers = {k.lower(): v for k, v in self.headers.items()}
        verified = []
        for secret in SECRETS:
            try:
                Webhook(secret).verify(raw, headers)
                verified.append(True)
            except Exception:  # the library's WebhookVerificationError, or bad input
                verified.append(False)
        with LOCK:
            mode = STATE["mode"]
            lo, hi = STATE["delay_ms"]
            fail_rate = STATE["fail_rate"]
        delay = random.uniform(lo, hi) / 1000.0
        if delay:
            time.sleep(delay)
        if mode == "down":
            status = 0
        elif mode == "gone":
            status = 410
        elif mode == "fail" or random.random() < fail_rate:
            status = 500
        elif not any(verified):
            status = 400
        else:
            status = 200
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        data = (body or {}).get("data") or {}
        record = {
            "webhook_id": headers.get("webhook-id"),
            "signatures": len((headers.get("webhook-signature") or "").split(" ")),
            "verified": verified,
            "status": status,
            "received_ms": int(received * 1000),
            "type": (body or {}).get("type"),
            "event_id": data.get("id"),
            "event_at": data.get("at"),
            "message_id": data.get("message_id"),
            "body": raw.decode("utf-8", "replace"),
        }
        with LOCK:
            RECORDS.append(record)
        if status == 0:
            # Down: the connection drops with no answer at all.
            self.close_connection = True
            return
        self.answer(status, {"ok": status == 200})


def main():
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
