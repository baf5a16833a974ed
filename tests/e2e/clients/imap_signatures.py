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
    typ, parts = m.fetch(num, "(BODY.PEEK[])")
    raw = next(p[1] for p in parts if isinstance(p, tuple))
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    texts = [
        part.get_content()
        for part in msg.walk()
        if part.get_content_type() == "text/plain"
    ]
    out["messages"].append(
        {
            "subject": str(msg["Subject"] or ""),
            "signature": str(msg["X-Renkei-Signature"] or ""),
            "text": "\n".join(texts),
            "attachments": [p.get_filename() for p in msg.iter_attachments()],
        }
    )
m.logout()
print(json.dumps(out, ensure_ascii=False))
