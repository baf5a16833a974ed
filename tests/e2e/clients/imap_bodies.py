#!/usr/bin/env python3
"""IMAP bodies as a client that downloads parts on demand sees them.

  imap_bodies.py PORT CERT USER PASSWORD check OUTDIR
      For every INBOX message: BODYSTRUCTURE and RFC822.SIZE (imapclient's
      parser), BODY.PEEK[] (the same in one FETCH of all of them, its length against RFC822.SIZE, parsed with
      Python's email package, written to OUTDIR/<uid>.eml for mail-parser),
      and each part's BODY.PEEK[n] and BODY.PEEK[n.MIME] (the size
      BODYSTRUCTURE gives, the bytes BODY[] holds at that part). Prints one
      JSON line: per message, per attachment, name, type, size, sha256.

  imap_bodies.py PORT CERT USER PASSWORD big UID
      Signs in, prints SIGNED-IN and waits for a line on stdin, then
      streams BODY.PEEK[] and BODY.PEEK[2] of message UID over a raw TLS
      socket without holding them: the literal lengths, RFC822.SIZE, and the
      SHA-256 of part 2 base64-decoded line by line.
"""

import base64
import email
import email.policy
import hashlib
import json
import os
import socket
import ssl
import sys
import time

from imapclient import IMAPClient


def ctx(cert):
    c = ssl.create_default_context(cafile=cert)
    c.check_hostname = False
    return c


def leaf_parts(bs, prefix=""):
    """(part number, bodystructure) of each leaf."""
    if isinstance(bs[0], (list, tuple)):
        out = []
        for i, child in enumerate(bs[0]):
            if not isinstance(child, (list, tuple)):
                break
            out += leaf_parts(child, f"{prefix}{i + 1}.")
        return out
    return [(prefix.rstrip(".") or "1", bs)]


def check(port, cert, user, password, outdir):
    m = IMAPClient("127.0.0.1", port=port, ssl=True, ssl_context=ctx(cert))
    m.login(user, password)
    m.select_folder("INBOX", readonly=True)
    uids = m.search("ALL")
    meta = m.fetch(uids, ["BODYSTRUCTURE", "RFC822.SIZE"])
    # All at once (rendered ahead in batches, the large one streamed), then
    # one by one below: the same bytes.
    bulk = m.fetch(uids, ["BODY.PEEK[]"])
    result = []
    problems = []
    for uid in uids:
        bs = meta[uid][b"BODYSTRUCTURE"]
        size = meta[uid][b"RFC822.SIZE"]
        whole = m.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
        if bulk[uid][b"BODY[]"] != whole:
            problems.append(f"{uid}: BODY[] of a whole-folder FETCH differs")
        if len(whole) != size:
            problems.append(f"{uid}: RFC822.SIZE {size}, BODY[] {len(whole)}")
        with open(os.path.join(outdir, f"{uid}.eml"), "wb") as f:
            f.write(whole)
        # Pieces, as a client resuming a download asks for them.
        for start, length in ((0, 100), (size // 3, size // 2), (size - 10, 100)):
            got = m.fetch([uid], [f"BODY.PEEK[]<{start}.{length}>"])[uid]
            piece = got.get(f"BODY[]<{start}>".encode())
            if piece != whole[start:start + length]:
                problems.append(f"{uid}: BODY[]<{start}.{length}> differs")
        msg = email.message_from_bytes(whole, policy=email.policy.default)
        if msg.defects:
            problems.append(f"{uid}: email package defects {msg.defects}")
        parsed = [p for p in msg.walk() if not p.is_multipart()]
        leaves = leaf_parts(bs)
        if len(parsed) != len(leaves):
            problems.append(f"{uid}: {len(leaves)} parts in BODYSTRUCTURE, {len(parsed)} parsed")
        files = []
        for (num, leaf), part in zip(leaves, parsed):
            got = m.fetch([uid], [f"BODY.PEEK[{num}]", f"BODY.PEEK[{num}.MIME]"])[uid]
            body = got[f"BODY[{num}]".encode()]
            mime = got[f"BODY[{num}.MIME]".encode()]
            declared = leaf[6]
            if len(body) != declared:
                problems.append(f"{uid} part {num}: BODYSTRUCTURE {declared}, BODY[{num}] {len(body)}")
            if mime + body not in whole:
                problems.append(f"{uid} part {num}: MIME and body are not the message's bytes")
            if part.defects:
                problems.append(f"{uid} part {num}: defects {part.defects}")
            if num == "1":
                continue
            if leaf[5].lower() != b"base64" and leaf[5].lower() != "base64":
                problems.append(f"{uid} part {num}: encoding {leaf[5]}")
            clear = base64.b64decode(body)
            if part.get_payload(decode=True) != clear:
                problems.append(f"{uid} part {num}: email package decodes other bytes")
            ctype = f"{leaf[0].decode().lower()}/{leaf[1].decode().lower()}"
            files.append({
                "name": part.get_filename(),
                "type": ctype,
                "size": len(clear),
                "sha256": hashlib.sha256(clear).hexdigest(),
            })
        result.append({"uid": uid, "files": files})
    m.logout()
    print(json.dumps({"messages": result, "problems": problems}, ensure_ascii=False))


class Raw:
    def __init__(self, port, cert):
        self.s = ctx(cert).wrap_socket(socket.create_connection(("127.0.0.1", port)))
        self.buf = b""
        self.n = 0
        self.line()

    def fill(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise SystemExit("connection closed")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def take(self, n, sink):
        while n > 0:
            if not self.buf:
                self.fill()
            piece = self.buf[:n]
            self.buf = self.buf[len(piece):]
            n -= len(piece)
            sink(piece)

    def command(self, text, sink=lambda b: None):
        """Runs a command; returns its untagged lines, literals fed to sink."""
        self.n += 1
        tag = b"B%d" % self.n
        self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        lines = []
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                if b" OK " not in line[:20]:
                    raise SystemExit(f"{text}: {line!r}")
                return lines
            while line.endswith(b"}"):
                size = int(line[line.rindex(b"{") + 1:-1])
                lines.append((line, size))
                self.take(size, sink)
                line = self.line()
            lines.append((line, None))


def big(port, cert, user, password, uid):
    r = Raw(port, cert)
    r.command(f'LOGIN "{user}" "{password}"')
    r.command("EXAMINE INBOX")
    # Signed in (Argon2 and the key unlock are behind us; their memory, wiped
    # on a blocking thread, is given back within a moment): the caller starts
    # measuring the fetch, then says go.
    time.sleep(2)
    print("SIGNED-IN", flush=True)
    sys.stdin.readline()
    head = r.command(f"UID FETCH {uid} (RFC822.SIZE)")
    size = int(head[0][0].split(b"RFC822.SIZE ")[1].split(b")")[0].split(b" ")[0])
    whole = hashlib.sha256()
    lines = r.command(f"UID FETCH {uid} BODY.PEEK[]", whole.update)
    literal = [n for _, n in lines if n is not None]
    part = hashlib.sha256()
    pending = bytearray()

    def decode(chunk):
        pending.extend(chunk)
        cut = pending.rfind(b"\n") + 1
        if cut:
            part.update(base64.b64decode(bytes(pending[:cut]).replace(b"\r\n", b"")))
            del pending[:cut]

    plines = r.command(f"UID FETCH {uid} BODY.PEEK[2]", decode)
    part.update(base64.b64decode(bytes(pending).replace(b"\r\n", b"")))
    r.command("LOGOUT")
    print(json.dumps({
        "size": size,
        "literal": literal,
        "part_literal": [n for _, n in plines if n is not None],
        "part_sha256": part.hexdigest(),
    }))


def main():
    port, cert, user, password, what = sys.argv[1:6]
    if what == "check":
        check(int(port), cert, user, password, sys.argv[6])
    elif what == "big":
        big(int(port), cert, user, password, int(sys.argv[6]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
