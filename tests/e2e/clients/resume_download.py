#!/usr/bin/env python3
"""A download manager's resume, with Python's own HTTP client: signs in,
starts downloading PATH, breaks the connection off once CUT bytes arrived,
then asks for the rest with `Range` and `If-Range` (the first answer's ETag)
and joins the two parts. Prints one JSON object: what each answer said and
the joined file's length and SHA-256.

  resume_download.py '{"port": …, "cafile": …, "id": …, "password": …, "path": …, "cut": …}'
"""
import hashlib
import http.client
import json
import socket
import ssl
import sys

cfg = json.loads(sys.argv[1])
tls = ssl.create_default_context(cafile=cfg["cafile"])


def connect():
    return http.client.HTTPSConnection("localhost", cfg["port"], context=tls, timeout=120)


conn = connect()
conn.request(
    "POST",
    "/api/v1/session",
    body=json.dumps({"id": cfg["id"], "password": cfg["password"]}),
    headers={"content-type": "application/json"},
)
signed_in = conn.getresponse()
signed_in.read()
assert signed_in.status == 200, f"sign-in answered {signed_in.status}"
cookie = "; ".join(c.split(";")[0] for c in signed_in.headers.get_all("set-cookie"))
conn.close()

# The first attempt: CUT bytes, then the connection is gone.
conn = connect()
conn.request("GET", cfg["path"], headers={"cookie": cookie})
first = conn.getresponse()
head = b""
while len(head) < cfg["cut"]:
    piece = first.read(cfg["cut"] - len(head))
    if not piece:
        break
    head += piece
conn.sock.shutdown(socket.SHUT_RDWR)
conn.close()
etag = first.getheader("etag")

# The resume, for that very file.
conn = connect()
conn.request(
    "GET",
    cfg["path"],
    headers={"cookie": cookie, "range": f"bytes={len(head)}-", "if-range": etag},
)
rest = conn.getresponse()
tail = rest.read()
conn.close()
joined = head + tail
print(json.dumps({
    "first": {
        "status": first.status,
        "length": int(first.getheader("content-length")),
        "accept_ranges": first.getheader("accept-ranges"),
        "content_type": first.getheader("content-type"),
        "etag": etag,
        "received": len(head),
    },
    "resume": {
        "status": rest.status,
        "length": int(rest.getheader("content-length")),
        "content_range": rest.getheader("content-range"),
        "etag": rest.getheader("etag"),
    },
    "bytes": len(joined),
    "sha256": hashlib.sha256(joined).hexdigest(),
}))
