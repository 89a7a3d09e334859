#!/usr/bin/env python3
"""A webhook receiver for Steward's tests, on loopback.

Usage: webhook-receiver.py PORT SECRET FAIL_FIRST

Verifies every call with the `standardwebhooks` package from PyPI (an implementation of the
Standard Webhooks signature independent of Steward's), answers 500 to the first FAIL_FIRST
calls and 204 after, and prints one JSON line per call: its webhook-id, whether it verified,
the event type, the status answered and the body.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook

port, secret, fail_first = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
hook = Webhook(secret)
calls = 0


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global calls
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            payload = hook.verify(body, dict(self.headers.items()))
            verified = True
        except Exception as e:  # noqa: BLE001 - any failure is "not verified"
            payload, verified = None, False
            print(json.dumps({"error": str(e)}), file=sys.stderr, flush=True)
        calls += 1
        status = 500 if calls <= fail_first else 204
        print(
            json.dumps(
                {
                    "id": self.headers.get("webhook-id"),
                    "verified": verified,
                    "type": payload.get("type") if payload else None,
                    "status": status,
                    "body": body.decode("utf-8", "replace"),
                }
            ),
            flush=True,
        )
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
