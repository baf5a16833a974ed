"""Independent second-factor and mail-client checks for the Rust e2e tests.

usage:
  twofactor.py totp SECRET_BASE32 OFFSET_SECS   -> prints the code pyotp computes
  twofactor.py imap PORT CAFILE USER PASSWORD   -> prints one JSON object
"""
import email
import email.policy
import imaplib
import json
import ssl
import sys
import time

import pyotp

if sys.argv[1] == "totp":
    secret, offset = sys.argv[2], int(sys.argv[3])
    print(pyotp.TOTP(secret).at(time.time() + offset))
    sys.exit(0)

port, cafile, user, password = sys.argv[2:6]
ctx = ssl.create_default_context(cafile=cafile)
out = {}
m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx, timeout=30)
try:
    typ, data = m.login(user, password)
    out["login"] = typ
    out["text"] = b" ".join(data).decode()
except imaplib.IMAP4.error as e:
    out["login"] = "NO"
    out["text"] = str(e)
if out["login"] == "OK":
    typ, data = m.select("INBOX", readonly=True)
    out["exists"] = int(data[0])
    if out["exists"] > 0:
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        msg = email.message_from_bytes(data[0][1], policy=email.policy.default)
        out["subject"] = str(msg["subject"])
    m.logout()
print(json.dumps(out, ensure_ascii=False))
