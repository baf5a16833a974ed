"""Mail-client sessions that must end (Python's imaplib), driven by
tests/e2e/imap_hold.rs. Prints what a user would check as JSON lines.

usage: imap_session_end.py PORT CAFILE SCENARIO [USER PASSWORD] [N]

idle      sign in, select INBOX, IDLE (prints {"idling": true}), then wait
          for the server's BYE: {"bye": TEXT, "after_s": SECONDS}
noop      never sign in, send NOOP every half second: {"closed_after_s": S,
          "bye": TEXT, "noops": N}
crowd     open N connections without signing in: {"greeted": K}; then sign
          in on the first ones and open N more: {"greeted_after": K2}
"""
import imaplib
import json
import socket
import ssl
import sys
import time

port, cafile, scenario = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)


def say(obj):
    print(json.dumps(obj), flush=True)


def connect():
    return imaplib.IMAP4_SSL("localhost", port, ssl_context=ctx, timeout=120)


def greeted():
    """A connection that got the server's greeting, or None."""
    try:
        m = imaplib.IMAP4_SSL("localhost", port, ssl_context=ctx, timeout=5)
        return m
    except (OSError, imaplib.IMAP4.abort, imaplib.IMAP4.error):
        return None


if scenario == "idle":
    user, password = sys.argv[4], sys.argv[5]
    m = connect()
    m.login(user, password)
    m.select("INBOX")
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    line = m.readline()
    assert line.startswith(b"+"), line
    say({"idling": True})
    start = time.monotonic()
    bye = None
    while time.monotonic() - start < 120:
        line = m.readline()
        if not line:
            break
        if line.upper().startswith(b"* BYE"):
            bye = line.decode(errors="replace").strip()
            break
    say({"bye": bye, "after_s": time.monotonic() - start})
elif scenario == "noop":
    m = connect()
    start = time.monotonic()
    noops = 0
    bye = None
    try:
        while time.monotonic() - start < 60:
            tag = m._new_tag()
            m.send(tag + b" NOOP\r\n")
            while True:
                line = m.readline()
                if not line:
                    raise EOFError
                if line.upper().startswith(b"* BYE"):
                    bye = line.decode(errors="replace").strip()
                if line.startswith(tag):
                    break
            noops += 1
            time.sleep(0.5)
    except (EOFError, OSError, imaplib.IMAP4.abort):
        pass
    say({"closed_after_s": time.monotonic() - start, "bye": bye, "noops": noops})
elif scenario == "crowd":
    user, password, n = sys.argv[4], sys.argv[5], int(sys.argv[6])
    first = [greeted() for _ in range(n)]
    ok = [m for m in first if m is not None]
    say({"greeted": len(ok)})
    for m in ok:
        m.login(user, password)
    later = [greeted() for _ in range(n)]
    say({"greeted_after": sum(1 for m in later if m is not None)})
