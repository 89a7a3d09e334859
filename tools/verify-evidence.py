#!/usr/bin/env python3
"""An independent verifier of Steward's evidence, written from docs/audit-format.md alone.

Uses only Python's standard library and the `openssl` command (for Ed25519), so that checking
Steward's audit log, checkpoints and signed documents does not depend on Steward's own code.

    verify-evidence.py EXPORT_DIR PUBLIC_KEY_PEM [--checkpoints KEPT.jsonl] [SIGNED_DOCUMENT.json ...]

PUBLIC_KEY_PEM is the key the provider publishes, not the export's own. KEPT.jsonl holds
checkpoints kept from earlier (GET /v1/evidence/checkpoints): the export must hold every entry
they cover, unchanged. Exits 0 when everything verifies, 1 with the first fault otherwise.
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


ENTRY_KEYS = set(["seq", "at_ms", "prev_hash", "hash"] + FIELDS)
CHECKPOINT_KEYS = {"seq", "head", "at_ms", "signature"}
HEX = set("0123456789abcdef")


def lines_of(path):
    """The lines of an evidence file (a final newline ends the last line), as JSON objects."""
    with open(path, "rb") as f:
        data = f.read()
    if data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        return
    for n, raw in enumerate(data.split(b"\n"), start=1):
        where = "`%s` line %d" % (os.path.basename(path), n)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            fail(where + ": not valid UTF-8")
        pairs = []
        try:
            obj = json.loads(text, object_pairs_hook=lambda p: pairs.append(p) or dict(p))
        except ValueError:
            fail(where + ": not a JSON object")
        if not isinstance(obj, dict) or any(len(p) != len(dict(p)) for p in pairs):
            fail(where + ": not a JSON object with each key once")
        yield n, where, obj


def is_hex(v, n):
    return isinstance(v, str) and len(v) == n and set(v) <= HEX


def read_checkpoints(path, pem, into):
    last = 0
    for _, where, cp in lines_of(path):
        if set(cp) != CHECKPOINT_KEYS or not is_hex(cp["head"], 64) \
                or not is_hex(cp["signature"], 128) or type(cp["seq"]) is not int \
                or type(cp["at_ms"]) is not int or cp["seq"] < 1:
            fail(where + ": not a checkpoint")
        if cp["seq"] <= last:
            fail("checkpoint at entry %d: given twice or out of order" % cp["seq"])
        last = cp["seq"]
        message = (CHECKPOINT_DOMAIN + struct.pack(">Q", cp["seq"]) + bytes.fromhex(cp["head"])
                   + struct.pack(">q", cp["at_ms"]))
        if not ed25519_verify(pem, message, bytes.fromhex(cp["signature"])):
            fail("checkpoint at entry %d: bad signature" % cp["seq"])
        if into.get(cp["seq"], cp["head"]) != cp["head"]:
            fail("checkpoint at entry %d: two checkpoints disagree" % cp["seq"])
        into[cp["seq"]] = cp["head"]


def verify_log(export_dir, pem, kept=None):
    checkpoints = {}
    read_checkpoints(os.path.join(export_dir, "checkpoints.jsonl"), pem, checkpoints)
    if kept:
        read_checkpoints(kept, pem, checkpoints)
    last_seq, last_hash = 0, "00" * 32
    for n, where, e in lines_of(os.path.join(export_dir, "audit.jsonl")):
        expected = last_seq + 1
        if e.get("malformed") is not None:
            fail("entry %d: altered (malformed)" % expected)
        if set(e) != ENTRY_KEYS or not is_hex(e["prev_hash"], 64) or not is_hex(e["hash"], 64) \
                or type(e["seq"]) is not int or type(e["at_ms"]) is not int \
                or any(not isinstance(e[k], str) for k in FIELDS):
            fail(where + ": not an entry")
        if e["seq"] != expected:
            fail("entry %d: sequence (found %r)" % (expected, e["seq"]))
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
    args = sys.argv[1:]
    kept = None
    if "--checkpoints" in args:
        i = args.index("--checkpoints")
        kept = args[i + 1]
        del args[i:i + 2]
    if len(args) < 2:
        print(__doc__)
        sys.exit(2)
    export_dir, pem = args[0], args[1]
    verify_log(export_dir, pem, kept)
    for doc in args[2:]:
        verify_document(doc, pem)


if __name__ == "__main__":
    main()
