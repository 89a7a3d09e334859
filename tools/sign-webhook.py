#!/usr/bin/env python3
"""Signs a body as Standard Webhooks says, with the `standardwebhooks` package from PyPI (an
implementation independent of Steward's): what an external system does to answer Steward on
`POST /v1/datasets/{system}/answers` (docs/datasets.md, "External systems").

Usage: sign-webhook.py SECRET MESSAGE_ID < BODY

Prints two lines: the `webhook-timestamp` (now, Unix seconds) and the `webhook-signature`.
"""
import datetime
import sys

from standardwebhooks.webhooks import Webhook

secret, message_id = sys.argv[1], sys.argv[2]
body = sys.stdin.buffer.read().decode("utf-8")
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
print(int(now.timestamp()))
print(Webhook(secret).sign(message_id, now, body))
