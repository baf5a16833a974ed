"""A real IMAP client session (Python's imaplib) against Renkei, driven by the
Rust e2e test. Prints one JSON object with what a user would check.

usage: imap_client.py PORT CAFILE USER PASSWORD SCENARIO
"""
import email
import email.policy
import hashlib
import imaplib
import json
import re
import socket
import ssl
import sys
import time

port, cafile, user, password, scenario = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=cafile)
out = {}


def connect():
    return imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx, timeout=30)


def login_result(m):
    try:
        typ, data = m.login(user, password)
        return typ, b" ".join(data).decode()
    except imaplib.IMAP4.error as e:
        return "NO", str(e)


m = connect()
out["capabilities"] = sorted(m.capabilities)
typ, text = login_result(m)
out["login"] = typ
out["login_text"] = text
if typ != "OK":
    print(json.dumps(out))
    sys.exit(0)

typ, folders = m.list()
out["folders"] = sorted(
    re.sub(r'^\(.*?\) (NIL|"[^"]*") ', "", f.decode()).strip('"') for f in folders
)

if scenario == "reader":
    typ, data = m.select("INBOX")
    out["exists"] = int(data[0])
    typ, data = m.status("INBOX", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)")
    out["status"] = data[0].decode()
    typ, data = m.fetch("1:*", "(UID FLAGS ENVELOPE)")
    out["envelopes"] = [d.decode(errors="replace") for d in data if isinstance(d, bytes)]
    # The sizes a message list shows (known without decrypting attachments)
    # are the lengths of what is downloaded, and a message downloads the same
    # bytes every time.
    typ, data = m.fetch("1:*", "(RFC822.SIZE)")
    listed = [int(re.search(rb"RFC822\.SIZE (\d+)", d).group(1)) for d in data if isinstance(d, bytes)]
    downloaded, again = [], []
    for i in range(1, len(listed) + 1):
        typ, d = m.fetch(str(i), "(BODY.PEEK[])")
        downloaded.append(d[0][1])
        typ, d = m.fetch(str(i), "(BODY.PEEK[]<0.100000000>)")
        again.append(d[0][1])
    out["listed_sizes"] = listed
    out["downloaded_sizes"] = [len(b) for b in downloaded]
    out["downloads_identical"] = downloaded == again
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    raw = data[0][1]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out["subject"] = str(msg["subject"])
    out["from"] = str(msg["from"])
    out["signature_header"] = str(msg["X-Renkei-Signature"])
    out["attachments"] = [
        {
            "name": part.get_filename(),
            "type": part.get_content_type(),
            "sha256": hashlib.sha256(part.get_payload(decode=True)).hexdigest(),
        }
        for part in msg.iter_attachments()
    ]
    body = msg.get_body(preferencelist=("plain",))
    out["text"] = body.get_content() if body else ""
    typ, data = m.fetch("1", "(FLAGS)")
    out["flags_after_peek"] = data[0].decode()
    typ, data = m.fetch("1", "(RFC822.SIZE BODY.PEEK[HEADER] BODY.PEEK[]<0.20>)")
    out["size_and_partial"] = [
        d[0].decode() if isinstance(d, tuple) else d.decode() for d in data
    ]
    typ, data = m.fetch("1", "(BODYSTRUCTURE)")
    out["bodystructure"] = data[0].decode(errors="replace")
    # The attachment alone, as a client fetches a part it wants to save.
    typ, data = m.fetch("1", "(BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[HEADER.FIELDS (SUBJECT FROM)])")
    pieces = [d for d in data if isinstance(d, tuple)]
    import base64
    out["part2_sha256"] = hashlib.sha256(base64.b64decode(pieces[0][1])).hexdigest()
    out["part2_mime"] = pieces[1][1].decode(errors="replace")
    out["header_fields"] = pieces[2][1].decode(errors="replace")
    typ, data = m.search(None, "UNSEEN")
    out["unseen"] = data[0].decode()
    typ, data = m.uid("SEARCH", None, "ALL")
    out["uids"] = data[0].decode()
    typ, data = m.search(None, "TEXT", "CT")
    out["search_text"] = data[0].decode()
    m.literal = "読影依頼 2".encode()
    typ, data = m.search("UTF-8", "SUBJECT")
    out["search_subject_utf8"] = data[0].decode()
    typ, data = m.search(None, "SINCE", "1-Jan-2020", "BEFORE", "1-Jan-2100")
    out["search_dates"] = data[0].decode()
    typ, data = m.store("1", "+FLAGS", "(\\Seen \\Flagged)")
    out["store"] = [d.decode() for d in data if d]
    # Archive the second one the mail-client way.
    m.store("2", "+FLAGS", "(\\Deleted)")
    typ, data = m.expunge()
    out["expunged"] = [d.decode() for d in data if d]
    typ, data = m.select("Archive")
    out["archive_exists"] = int(data[0])
    m.select("INBOX")
    # IDLE (imaplib has no idle() before 3.14: speak it directly).
    tag = b"I1"
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    out["idle_ack"] = line.decode().strip()
    print("IDLING", flush=True)
    m.sock.settimeout(20)
    started = time.time()
    news = []
    while True:
        line = m.readline()
        if not line:
            break
        news.append(line.decode().strip())
        if b"EXISTS" in line:
            out["exists_at"] = time.time()
            break
    out["idle_news"] = news
    out["idle_seconds"] = round(time.time() - started, 2)
    m.send(b"DONE\r\n")
    out["idle_done"] = m.readline().decode().strip()
    typ, data = m.select("Facility")
    out["facility_select"] = typ
elif scenario == "uids":
    m.select("INBOX")
    typ, data = m.uid("SEARCH", None, "ALL")
    out["uids"] = data[0].decode()
    typ, data = m.status("INBOX", "(UIDVALIDITY)")
    out["status"] = data[0].decode()
elif scenario == "clerk":
    typ, data = m.select("Facility", readonly=True)
    out["exists"] = int(data[0])
    try:
        m.select("Facility")
        out["select_readonly"] = False
    except imaplib.IMAP4.readonly:
        out["select_readonly"] = True
    m.select("Facility", readonly=True)
    try:
        typ, data = m.store("1", "+FLAGS", "(\\Seen)")
        out["store"] = typ + " " + b" ".join(d for d in data if d).decode()
    except imaplib.IMAP4.error as e:
        out["store"] = "NO " + str(e)
    try:
        typ, data = m.expunge()
        out["expunge"] = typ + " " + b" ".join(d for d in data if d).decode()
    except imaplib.IMAP4.error as e:
        out["expunge"] = "NO " + str(e)
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER])")
    out["fetch"] = typ
elif scenario == "colleague":
    typ, data = m.select("INBOX")
    out["exists"] = int(data[0])
    try:
        typ, data = m.select("Facility")
        out["facility"] = typ
    except imaplib.IMAP4.error as e:
        out["facility"] = "NO " + str(e)

m.logout()
print(json.dumps(out, ensure_ascii=False))
