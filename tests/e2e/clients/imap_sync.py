"""IMAP resynchronisation as mail clients do it, over Python's imaplib (TLS and
LOGIN) with the commands written out: MOVE, QRESYNC and IDLE. Driven by the
Rust e2e test (tests/e2e/imap_sync.rs); prints one JSON object last.

usage: imap_sync.py PORT CAFILE USER PASSWORD SCENARIO [ARGS...]
  move FROM SUBJECT TO    UID MOVE the message with that subject
  know SUBJECT...         ENABLE QRESYNC, SELECT INBOX: HIGHESTMODSEQ, and the
                          UIDs of the messages with those subjects, in order
  resync MODSEQ UIDS      SELECT INBOX (QRESYNC (1 MODSEQ UIDS)), then
                          UID FETCH 1:* (FLAGS) (CHANGEDSINCE MODSEQ VANISHED)
  idle                    SELECT INBOX, IDLE; prints IDLING, then waits for
                          the first FETCH and says when it came
  extras SUBJECT GONE KEPT
                          LIST with a reference and special uses, CREATE
                          Trash, SORT, ESEARCH, UID EXPUNGE of GONE (KEPT marked
                          deleted too), STORE with UNCHANGEDSINCE, COPY of
                          SUBJECT to Trash
"""
import imaplib
import json
import re
import ssl
import sys
import time

port, cafile, user, password, scenario = sys.argv[1:6]
args = sys.argv[6:]
ctx = ssl.create_default_context(cafile=cafile)
m = imaplib.IMAP4_SSL("localhost", int(port), ssl_context=ctx, timeout=30)
m.login(user, password)
out = {"capabilities": sorted(m.capabilities)}
counter = [0]


def command(text):
    """Sends one command; returns every line up to and with its tagged answer."""
    counter[0] += 1
    tag = f"s{counter[0]}"
    m.send(f"{tag} {text}\r\n".encode())
    lines = []
    while True:
        line = m.readline().decode(errors="replace").rstrip("\r\n")
        lines.append(line)
        if line.startswith(tag + " "):
            return lines


def fetches(lines):
    """UID → FLAGS of the FETCH lines."""
    found = {}
    for line in lines:
        if " FETCH " in line:
            uid = re.search(r"UID (\d+)", line)
            flags = re.search(r"FLAGS \(([^)]*)\)", line)
            if uid:
                found[uid.group(1)] = sorted(flags.group(1).split()) if flags else None
    return found


def vanished(lines):
    return [line for line in lines if line.startswith("* VANISHED")]


if scenario == "move":
    source, subject, folder = args
    command(f'SELECT "{source}"')
    hit = command(f'UID SEARCH SUBJECT "{subject}"')
    uids = re.search(r"^\* SEARCH ?(.*)$", hit[0]).group(1).split()
    out["uids"] = uids
    out["move"] = command(f'UID MOVE {",".join(uids)} "{folder}"')
    out["after"] = command("NOOP")
elif scenario == "know":
    out["enable"] = command("ENABLE QRESYNC")
    lines = command("SELECT INBOX")
    out["select"] = lines
    out["highestmodseq"] = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(lines)).group(1))
    out["uids"] = [
        re.search(r"^\* SEARCH ?(.*)$", command(f'UID SEARCH SUBJECT "{s}"')[0]).group(1)
        for s in args
    ]
elif scenario == "resync":
    modseq, uids = args
    out["enable"] = command("ENABLE QRESYNC")
    lines = command(f"SELECT INBOX (QRESYNC (1 {modseq} {uids}))")
    out["select"] = lines
    out["select_vanished"] = vanished(lines)
    out["select_fetches"] = fetches(lines)
    out["highestmodseq"] = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(lines)).group(1))
    lines = command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    out["fetch"] = lines
    out["fetch_vanished"] = vanished(lines)
    out["fetch_fetches"] = fetches(lines)
    lines = command(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {out['highestmodseq']})")
    out["nothing_since"] = fetches(lines)
elif scenario == "extras":
    subject, gone, kept = args
    out["list_all"] = command('LIST "" "*"')
    out["list_inbox_ref"] = command('LIST "INBOX" "*"')
    out["create_trash"] = command("CREATE Trash")
    out["enable"] = command("ENABLE CONDSTORE")
    command("SELECT INBOX")
    out["sort"] = command("UID SORT (REVERSE SUBJECT) UTF-8 ALL")

    def uid_of(s):
        hit = command(f'UID SEARCH SUBJECT "{s}"')
        return re.search(r"^\* SEARCH ?(.*)$", hit[0]).group(1).split()[0]

    out["uids"] = [int(uid_of(s)) for s in sorted(args, reverse=True)]
    # ESEARCH (RFC 4731): the same search with RETURN options, and one that finds nothing.
    out["esearch"] = command("UID SEARCH RETURN (MIN MAX COUNT ALL) ALL")
    out["esearch_none"] = command('SEARCH RETURN (COUNT MIN) SUBJECT "no-such-subject"')
    out["esearch_default"] = command("SEARCH RETURN () ALL")

    command(f"UID STORE {uid_of(gone)},{uid_of(kept)} +FLAGS.SILENT (\\Deleted)")
    out["uid_expunge"] = command(f"UID EXPUNGE {uid_of(gone)}")
    uid = uid_of(subject)
    lines = command(f"UID FETCH {uid} (MODSEQ)")
    modseq = int(re.search(r"MODSEQ \((\d+)\)", " ".join(lines)).group(1))
    out["modseq"] = modseq
    out["store_stale"] = command(f"UID STORE {uid} (UNCHANGEDSINCE {modseq - 1}) +FLAGS (\\Seen)")
    out["store_fresh"] = command(f"UID STORE {uid} (UNCHANGEDSINCE {modseq}) +FLAGS (\\Seen)")
    out["copy_trash"] = command(f"UID COPY {uid} Trash")
    out["noop_after_copy"] = command("NOOP")
elif scenario == "idle":
    command("SELECT INBOX")
    counter[0] += 1
    tag = f"s{counter[0]}"
    m.send(f"{tag} IDLE\r\n".encode())
    out["idle_ack"] = m.readline().decode().strip()
    print("IDLING", flush=True)
    news = []
    while True:
        line = m.readline().decode(errors="replace").rstrip("\r\n")
        news.append(line)
        if " FETCH " in line:
            out["fetch_at"] = time.time()
            break
        if not line:
            break
    out["idle_news"] = news
    m.send(b"DONE\r\n")
    out["idle_done"] = m.readline().decode().strip()

m.logout()
print(json.dumps(out))
