"""Sends a corpus of broken IMAP input over TLS and records the answers.

usage: imap_corpus.py PORT CAFILE USER PASSWORD
Prints one JSON object: for each case, the first response line with its tag.
"""
import json
import socket
import ssl
import sys

port, cafile, user, password = sys.argv[1:5]
ctx = ssl.create_default_context(cafile=cafile)


def connect():
    s = ctx.wrap_socket(socket.create_connection(("localhost", int(port)), timeout=10),
                        server_hostname="localhost")
    f = s.makefile("rb")
    greeting = f.readline().decode(errors="replace").strip()
    return s, f, greeting


def ask(s, f, raw, tag):
    """Sends raw bytes; returns the tagged answer (or a continuation/BYE/EOF)."""
    s.sendall(raw)
    seen = []
    while True:
        line = f.readline()
        if not line:
            seen.append("<EOF>")
            return seen
        text = line.decode(errors="replace").rstrip("\r\n")
        seen.append(text)
        if text.startswith(tag + " ") or text.startswith("+ ") or text.startswith("* BYE"):
            return seen
        if tag == "*" and text.startswith("* BAD"):
            return seen


out = {}
s, f, out["greeting"] = connect()
cases = [
    ("empty", b"\r\n", "*"),
    ("noop", b"a1 NOOP\r\n", "a1"),
    ("unbalanced", b"a2 LOGIN (unbalanced\r\n", "a2"),
    ("fetch_before_login", b"a3 FETCH 1:* FLAGS\r\n", "a3"),
    ("select_before_login", b"a4 SELECT INBOX\r\n", "a4"),
    ("huge_literal", b"a5 LOGIN {999999999}\r\n", "a5"),
    ("unknown", b"a6 FROBNICATE\r\n", "a6"),
    ("long_line", b"a7 NOOP " + b"x" * 100_000 + b"\r\n", "a7"),
    ("noop_after", b"a8 NOOP\r\n", "a8"),
]
for name, raw, tag in cases:
    out[name] = ask(s, f, raw, tag)
out["login"] = ask(s, f, f'b0 LOGIN "{user}" "{password}"\r\n'.encode(), "b0")
after = [
    ("select", b"b1 SELECT INBOX\r\n", "b1"),
    ("seq_zero", b"b2 FETCH 0:5 FLAGS\r\n", "b2"),
    ("seq_past_end", b"b3 FETCH 99 FLAGS\r\n", "b3"),
    ("store_unbalanced", b"b4 STORE 1 +FLAGS (\\Seen\r\n", "b4"),
    ("search_unknown", b"b5 SEARCH FROBNICATE\r\n", "b5"),
    ("append", b"b6 APPEND INBOX {3+}\r\nabc\r\n", "b6"),
    ("delete_folder", b"b7 DELETE INBOX\r\n", "b7"),
    # Sets naming four billion messages must be answered at once, not expanded.
    ("uid_fetch_huge", b"b9 UID FETCH 1:4294967295 (FLAGS)\r\n", "b9"),
    ("fetch_huge", b"c1 FETCH 1:4294967295 (FLAGS)\r\n", "c1"),
    ("uid_search_huge", b"c2 UID SEARCH UID 1:4294967295\r\n", "c2"),
    # EXAMINE opens even INBOX read-only.
    ("examine", b"c3 EXAMINE INBOX\r\n", "c3"),
    ("store_examined", b"c4 STORE 1 +FLAGS (\\Flagged)\r\n", "c4"),
    ("still_serving", b"b8 NOOP\r\n", "b8"),
]
for name, raw, tag in after:
    out[name] = ask(s, f, raw, tag)
s.close()

# A client that sends only garbage before signing in is dropped.
s, f, _ = connect()
answers = []
for i in range(15):
    try:
        s.sendall(b"x%d GARBAGE(((\r\n" % i)
        line = f.readline()
    except OSError:
        line = b""
    if not line:
        answers.append("<EOF>")
        break
    answers.append(line.decode(errors="replace").strip())
    if line.startswith(b"* BYE"):
        break
out["flood"] = answers
s.close()

# And the server still takes new connections.
s, f, greeting = connect()
out["new_connection"] = greeting
s.close()
print(json.dumps(out))
