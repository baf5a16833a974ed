"""What a mail client shows of each message in the INBOX: its subject, the
X-Renkei-Signature header and the text. Driven by tests/e2e/place.rs.

usage: imap_signatures.py PORT CAFILE USER PASSWORD
"""
import email
import email.policy
import imaplib
import json
import ssl
import sys

port, cafile, user, password = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=cafile)
m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx, timeout=30)
m.login(user, password)
m.select("INBOX", readonly=True)
typ, data = m.search(None, "ALL")
out = {"messages": []}
for num in data[0].split():
    typ, parts = m.fetch(num, "(BODY.PEEK[HEADER.FIELDS (SUBJECT X-RENKEI-SIGNATURE)])")
    head = next(p[1] for p in parts if isinstance(p, tuple))
    head = email.message_from_bytes(head, policy=email.policy.default)
    entry = {
        "subject": str(head["Subject"] or ""),
        "signature": str(head["X-Renkei-Signature"] or ""),
        "text": "",
        "attachments": [],
    }
    # The whole message: refused (NO) when a file fails its integrity check.
    typ, parts = m.fetch(num, "(BODY.PEEK[])")
    entry["fetch"] = typ
    if typ != "OK":
        entry["error"] = b" ".join(p for p in parts if isinstance(p, bytes)).decode(errors="replace")
    else:
        raw = next(p[1] for p in parts if isinstance(p, tuple))
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        entry["text"] = "\n".join(
            part.get_content()
            for part in msg.walk()
            if part.get_content_type() == "text/plain"
        )
        entry["attachments"] = [p.get_filename() for p in msg.iter_attachments()]
    out["messages"].append(entry)
m.logout()
print(json.dumps(out, ensure_ascii=False))
