"""The same mailbox through the imapclient package (a second real client
library, as mail tools built on it use IMAP). Prints one JSON object.

usage: imap_imapclient.py PORT CAFILE USER PASSWORD
"""
import email
import email.policy
import hashlib
import json
import ssl
import sys

from imapclient import IMAPClient

port, cafile, user, password = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=cafile)
out = {}
with IMAPClient("localhost", port=int(port), ssl=True, ssl_context=ctx, timeout=30) as c:
    c.login(user, password)
    out["folders"] = sorted(name for _, _, name in c.list_folders())
    sel = c.select_folder("INBOX", readonly=False)
    out["exists"] = sel[b"EXISTS"]
    uids = c.search(["ALL"])
    out["uids"] = len(uids)
    data = c.fetch(uids, ["ENVELOPE", "RFC822.SIZE", "BODY.PEEK[]", "FLAGS"])
    msgs = []
    for uid in uids:
        d = data[uid]
        env = d[b"ENVELOPE"]
        raw = d[b"BODY[]"]
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        msgs.append({
            "subject": str(msg["subject"]),
            "envelope_subject": email.header.make_header(
                email.header.decode_header(env.subject.decode())
            ).__str__(),
            "size_matches": d[b"RFC822.SIZE"] == len(raw),
            "attachments": [
                hashlib.sha256(p.get_payload(decode=True)).hexdigest()
                for p in msg.iter_attachments()
            ],
        })
    out["messages"] = msgs
    out["subject_search"] = len(c.search(["SUBJECT", "読影"], charset="UTF-8"))
    c.add_flags(uids[:1], [b"\\Flagged"])
    out["flags_first"] = sorted(f.decode() for f in c.get_flags(uids[:1])[uids[0]])
    c.logout()
print(json.dumps(out, ensure_ascii=False))
