#!/usr/bin/env python3
"""Opens a Steward transfer bundle as docs/incidents.md describes it, independently of Steward:
the 19 bytes `STEWARD-TRANSFER-1\\n`, a 12-byte nonce, then the AES-256-GCM ciphertext and tag
of the bundle's JSON, with the transfer plan's id as additional data.

    python3 tools/open-transfer-bundle.py BUNDLE KEY_BASE64 PLAN_ID

Prints the JSON; exits 3 when the bundle does not open (another key or plan, or damage).
Needs the `cryptography` package (PyPI)."""

import base64
import json
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"STEWARD-TRANSFER-1\n"


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, key_b64, plan = sys.argv[1:]
    data = open(path, "rb").read()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 12 + 16:
        print("not a transfer bundle", file=sys.stderr)
        return 3
    nonce, sealed = data[len(MAGIC) : len(MAGIC) + 12], data[len(MAGIC) + 12 :]
    key = base64.b64decode(key_b64)
    if len(key) != 32:
        print("the key is not 32 bytes", file=sys.stderr)
        return 3
    try:
        plain = AESGCM(key).decrypt(nonce, sealed, plan.encode("utf-8"))
    except InvalidTag:
        print("the bundle does not open with this key and plan", file=sys.stderr)
        return 3
    bundle = json.loads(plain)
    if bundle.get("format") != "steward-transfer/1" or bundle.get("transfer") != plan:
        print("the bundle is not this plan's", file=sys.stderr)
        return 3
    json.dump(bundle, sys.stdout, ensure_ascii=False, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
