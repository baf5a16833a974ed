"""STARTTLS with real clients (Python's imaplib) and a raw socket that tries
to inject a command behind STARTTLS. Prints one JSON object.

usage: imap_starttls.py PORT CAFILE USER PASSWORD
"""
import imaplib
import json
import socket
import ssl
import sys

port, cafile, user, password = sys.argv[1:5]
port = int(port)
ctx = ssl.create_default_context(cafile=cafile)
out = {}

# Before TLS: what is offered, and a password is not taken.
m = imaplib.IMAP4("localhost", port, timeout=30)
out["plain_capabilities"] = sorted(m.capabilities)
try:
    typ, data = m.login(user, password)
    out["plain_login"] = typ
except imaplib.IMAP4.error as e:
    out["plain_login"] = "refused: " + str(e)
m.logout()

# After STARTTLS: a normal session.
m = imaplib.IMAP4("localhost", port, timeout=30)
m.starttls(ssl_context=ctx)
out["tls_capabilities"] = sorted(m.capabilities)
typ, _ = m.login(user, password)
out["tls_login"] = typ
typ, data = m.select("INBOX")
out["exists"] = int(data[0])
typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
out["subject_header"] = data[0][1].decode(errors="replace").strip()
m.logout()


def read_until(sock, marker, limit=65536):
    buf = b""
    while marker not in buf and len(buf) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf


# A LOGIN sent in clear right behind STARTTLS (the classic injection) must not
# be carried into the TLS session.
raw = socket.create_connection(("localhost", port), timeout=30)
read_until(raw, b"\r\n")
raw.sendall(b"s1 STARTTLS\r\ns2 LOGIN " + user.encode() + b" " + password.encode() + b"\r\n")
answer = read_until(raw, b"s1 ")
answer += read_until(raw, b"\r\n") if not answer.endswith(b"\r\n") else b""
out["starttls_answer"] = answer.decode(errors="replace").strip().splitlines()[-1]
tls = ctx.wrap_socket(raw, server_hostname="localhost")
tls.sendall(b"s3 SELECT INBOX\r\n")
after = read_until(tls, b"s3 ").decode(errors="replace")
after += read_until(tls, b"\r\n").decode(errors="replace") if not after.endswith("\r\n") else ""
out["injected_login_answered"] = "s2 " in after
out["select_after_injection"] = [l for l in after.splitlines() if l.startswith("s3 ")]
tls.close()
print(json.dumps(out))
