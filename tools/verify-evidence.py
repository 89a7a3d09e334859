#!/usr/bin/env python3
"""An independent verifier of Steward's evidence, written from docs/audit-format.md alone.

Uses only Python's standard library and the `openssl` command (for Ed25519), so that checking
Steward's audit log, checkpoints and signed documents does not depend on Steward's own code.

    verify-evidence.py EXPORT_DIR PUBLIC_KEY_PEM [SIGNED_DOCUMENT.json ...]

Exits 0 when everything verifies, 1 with the first fault otherwise.
"""

import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

ENTRY_DOMAIN = b"steward.audit.v1\n"
CHECKPOINT_DOMAIN = b"steward.checkpoint.v1\n"
FIELDS = ["actor", "role", "action", "outcome", "subject", "purpose", "categories", "detail",
          "policy_version"]


def ed25519_verify(pem_path, message, signature):
    with tempfile.TemporaryDirectory() as tmp:
        msg, sig = os.path.join(tmp, "msg"), os.path.join(tmp, "sig")
        with open(msg, "wb") as f:
            f.write(message)
        with open(sig, "wb") as f:
            f.write(signature)
        r = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pem_path,
                            "-rawin", "-in", msg, "-sigfile", sig], capture_output=True)
        return r.returncode == 0


def canonical(e):
    out = ENTRY_DOMAIN + struct.pack(">Q", e["seq"]) + struct.pack(">q", e["at_ms"])
    out += bytes.fromhex(e["prev_hash"])
    for name in FIELDS:
        b = e[name].encode("utf-8")
        out += struct.pack(">I", len(b)) + b
    return out


def fail(msg):
    print("FAILED: " + msg)
    sys.exit(1)


def verify_log(export_dir, pem):
    checkpoints = {}
    with open(os.path.join(export_dir, "checkpoints.jsonl")) as f:
        for line in f:
            cp = json.loads(line)
            message = (CHECKPOINT_DOMAIN + struct.pack(">Q", cp["seq"]) + bytes.fromhex(cp["head"])
                       + struct.pack(">q", cp["at_ms"]))
            if not ed25519_verify(pem, message, bytes.fromhex(cp["signature"])):
                fail("checkpoint at entry %d: bad signature" % cp["seq"])
            checkpoints[cp["seq"]] = cp["head"]
    last_seq, last_hash = 0, "00" * 32
    with open(os.path.join(export_dir, "audit.jsonl")) as f:
        for line in f:
            e = json.loads(line)
            expected = last_seq + 1
            if e.get("seq") != expected:
                fail("entry %d: sequence (found %r)" % (expected, e.get("seq")))
            if e.get("malformed") or any(k not in e for k in FIELDS + ["prev_hash", "hash"]):
                fail("entry %d: altered (malformed)" % expected)
            if e["prev_hash"] != last_hash:
                fail("entry %d: broken link" % expected)
            h = hashlib.sha256(canonical(e)).hexdigest()
            if h != e["hash"]:
                fail("entry %d: altered" % expected)
            if expected in checkpoints and checkpoints[expected] != h:
                fail("entry %d: differs from the signed checkpoint" % expected)
            last_seq, last_hash = expected, h
    beyond = [s for s in checkpoints if s > last_seq]
    if beyond:
        fail("entry %d: truncated (a checkpoint covers entry %d)" % (last_seq + 1, max(beyond)))
    sealed = max(checkpoints) if checkpoints else 0
    print("audit log OK: %d entries, %d checkpoints, %d unsealed"
          % (last_seq, len(checkpoints), last_seq - sealed))


def verify_document(path, pem):
    with open(path) as f:
        doc = json.load(f)
    payload = base64.b64decode(doc["payload"], validate=True)
    signature = base64.b64decode(doc["signature"], validate=True)
    if not ed25519_verify(pem, payload, signature):
        fail("%s: signature does not verify" % path)
    body = json.loads(payload)
    print("%s OK: %s (audit entry %s)" % (os.path.basename(path), body["type"], body["audit_seq"]))


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        sys.exit(2)
    export_dir, pem = sys.argv[1], sys.argv[2]
    verify_log(export_dir, pem)
    for doc in sys.argv[3:]:
        verify_document(doc, pem)


if __name__ == "__main__":
    main()
