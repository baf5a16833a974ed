#!/usr/bin/env python3
"""bench/imap client: one driver for both servers (run by bench/imap/run.sh).

  imap_bench.py export PORT USER PASSWORD MAILDIR
      Copies every INBOX message of the server on PORT (implicit TLS) into a
      Maildir (cur/, no flags, mtime = INTERNALDATE, S=/W= sizes), byte for byte
      as BODY.PEEK[] returns it: Dovecot then serves the very messages Renkei
      renders.

  imap_bench.py bench USER PASSWORD RUNS NAME:PORT NAME:PORT
      Warm: times the same commands against both servers, alternating, over
      TLS, after one warm-up pass in the same session, and prints a table of
      medians and ratios (first NAME / second NAME; target <= 1x).

  imap_bench.py cold USER PASSWORD NAME:PORT NAME:PORT
      One cold round, on servers just started: each first-look operation on
      a fresh session (LOGIN, SELECT, the one timed command, LOGOUT), the
      servers in the order given. Prints one JSON line of seconds.

  imap_bench.py coldreport FILE
      Medians of the rounds in FILE (lines from `cold`) and ratios (target
      <= 2x).

  imap_bench.py bigmem PORT USER PASSWORD PID
      Streams BODY.PEEK[] of message 1 without keeping it, and prints the
      peak resident memory (VmHWM) of server process PID afterwards.

The timing client is a raw TLS socket that reads until the tagged completion:
no response parsing beyond counting, so the client's own cost is small and the
same for both servers (imaplib would add more per-line Python work than the
servers spend on some commands, hiding the ratio).
"""

import imaplib
import json
import os
import re
import socket
import ssl
import statistics
import sys
import time

TARGET = 1.0  # warm
COLD_TARGET = 2.0


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------- export


def export(port, user, password, maildir):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls_context())
    m.login(user, password)
    typ, data = m.select("INBOX", readonly=True)
    count = int(data[0])
    n = 0
    total = 0
    step = 250
    for start in range(1, count + 1, step):
        end = min(count, start + step - 1)
        typ, data = m.fetch(f"{start}:{end}", "(INTERNALDATE BODY.PEEK[])")
        if typ != "OK":
            raise SystemExit(f"export FETCH {start}:{end}: {typ} {data}")
        for part in data:
            if not isinstance(part, tuple):
                continue
            head, body = part
            date = imaplib.Internaldate2tuple(head)
            mtime = time.mktime(date) if date else time.time()
            n += 1
            total += len(body)
            name = f"{int(mtime)}.M{n:06d}P{os.getpid()}.renkei-bench,S={len(body)},W={len(body)}:2,"
            path = os.path.join(maildir, "cur", name)
            with open(path, "wb") as f:
                f.write(body)
            os.utime(path, (mtime, mtime))
    m.logout()
    if n != count:
        raise SystemExit(f"exported {n} of {count} messages")
    print(f"exported {n} messages, {total / 1e6:.1f} MB, into {maildir}")


# ---------------------------------------------------------------- timing client


class Conn:
    def __init__(self, port):
        raw = socket.create_connection(("127.0.0.1", port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = tls_context().wrap_socket(raw)
        self.n = 0
        self.buf = bytearray()
        while not self.buf.endswith(b"\r\n"):
            self.buf += self.s.recv(65536)
        self.buf.clear()

    def cmd(self, line):
        """Sends one command; returns (status line, whole response bytes)."""
        self.n += 1
        tag = b"T%05d" % self.n
        self.s.sendall(tag + b" " + line.encode() + b"\r\n")
        buf = bytearray()
        marker = b"\r\n" + tag + b" "
        while True:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise SystemExit("connection closed")
            buf += chunk
            if buf.endswith(b"\r\n"):
                # The tagged completion is the last line.
                at = buf.rfind(marker, max(0, len(buf) - len(chunk) - 300))
                if at >= 0 or buf.startswith(tag + b" "):
                    line_start = at + 2 if at >= 0 else 0
                    status = bytes(buf[line_start:]).strip()
                    return status, buf

    def ok(self, line):
        status, buf = self.cmd(line)
        if b" OK" not in status[:16]:
            raise SystemExit(f"{line!r}: {status[:200]!r}")
        return buf


FETCH_RE = re.compile(rb"^\* \d+ FETCH ", re.M)


def fetches(buf):
    return len(FETCH_RE.findall(buf))


def op_first_look(c, count):
    buf = c.ok("FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE)")
    return fetches(buf), len(buf)


def op_flags_envelope(c, count):
    buf = c.ok("FETCH 1:* (FLAGS ENVELOPE)")
    return fetches(buf), len(buf)


def op_header_sync(c, count):
    buf = c.ok("UID FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)")
    return fetches(buf), len(buf)


def op_flags_only(c, count):
    buf = c.ok("FETCH 1:* (UID FLAGS)")
    return fetches(buf), len(buf)


def op_body_range(c, count):
    buf = c.ok("FETCH 1:1000 BODY.PEEK[]")
    return fetches(buf), len(buf)


def op_body_each(c, count):
    n = 0
    size = 0
    # 1,000 messages spread over the folder, one command each (a webmail-like,
    # non-caching client opening messages one at a time).
    stride = max(1, count // 1000)
    for i in range(1000):
        buf = c.ok(f"FETCH {1 + (i * stride) % count} BODY.PEEK[]")
        n += fetches(buf)
        size += len(buf)
    return n, size


OPS = [
    ("FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE)", op_first_look, True),
    ("FETCH 1:* (FLAGS ENVELOPE)", op_flags_envelope, True),
    ("FETCH 1:1000 BODY.PEEK[] (one command)", op_body_range, True),
    ("BODY.PEEK[] of 1,000, one command each", op_body_each, True),
    ("UID FETCH 1:* (FLAGS RFC822.SIZE INTERNALDATE)", op_header_sync, False),
    ("FETCH 1:* (UID FLAGS)", op_flags_only, False),
]


def bench(user, password, runs, servers):
    conns = {}
    counts = {}
    for name, port in servers:
        c = Conn(port)
        c.ok(f'LOGIN "{user}" "{password}"')
        buf = c.ok("SELECT INBOX")
        counts[name] = int(re.search(rb"\* (\d+) EXISTS", buf).group(1))
        conns[name] = c
    names = [n for n, _ in servers]
    if len(set(counts.values())) != 1:
        raise SystemExit(f"the servers hold different counts: {counts}")
    count = counts[names[0]]
    print(f"{count} messages in INBOX on each; {runs} timed runs after one warm-up, alternating servers")
    rows = []
    for label, fn, targeted in OPS:
        times = {n: [] for n in names}
        first = {}
        sizes = {}
        for run in range(runs + 1):
            for n in names:
                t = time.perf_counter()
                got, size = fn(conns[n], count)
                dt = time.perf_counter() - t
                want = 1000 if "1,000" in label or "1:1000" in label else count
                if got != want:
                    raise SystemExit(f"{n}: {label}: {got} FETCH responses, expected {want}")
                sizes[n] = size
                if run == 0:
                    first[n] = dt
                else:
                    times[n].append(dt)
        med = {n: statistics.median(times[n]) for n in names}
        rows.append((label, med, first, sizes, targeted, times))
    for c in conns.values():
        c.cmd("LOGOUT")

    a, b = names
    print()
    head = f"{'operation':<48} {a + ' s':>10} {b + ' s':>10} {'ratio':>7}  {'target':<7} verdict   (first run: {a} / {b}; response MB {a} / {b})"
    print(head)
    print("-" * len(head))
    for label, med, first, sizes, targeted, _ in rows:
        ratio = med[a] / med[b] if med[b] > 0 else float("inf")
        verdict = ("ok" if ratio <= TARGET else "MISSED") if targeted else "(info)"
        target = f"<= {TARGET:g}x" if targeted else ""
        print(
            f"{label:<48} {med[a]:>10.3f} {med[b]:>10.3f} {ratio:>6.2f}x  {target:<7} {verdict:<8}"
            f"  ({first[a]:.3f} / {first[b]:.3f} s; {sizes[a] / 1e6:.1f} / {sizes[b] / 1e6:.1f} MB)"
        )
    print()
    print("RAW " + " ".join(
        f"{label.split(' (')[0].replace(' ', '_')}:{n}=" + ",".join(f"{t:.4f}" for t in times[n])
        for label, _, _, _, _, times in rows for n in names))


COLD_OPS = [
    ("FETCH 1:* (FLAGS ENVELOPE BODYSTRUCTURE RFC822.SIZE)", op_first_look),
    ("FETCH 1:1000 BODY.PEEK[]", op_body_range),
]


def cold(user, password, servers):
    """One round: every operation on a fresh session, timed alone."""
    out = {}
    for label, fn in COLD_OPS:
        out[label] = {}
        for name, port in servers:
            c = Conn(port)
            c.ok(f'LOGIN "{user}" "{password}"')
            buf = c.ok("SELECT INBOX")
            count = int(re.search(rb"\* (\d+) EXISTS", buf).group(1))
            t = time.perf_counter()
            got, _ = fn(c, count)
            dt = time.perf_counter() - t
            want = 1000 if "1:1000" in label else count
            if got != want:
                raise SystemExit(f"{name}: {label}: {got} FETCH responses, expected {want}")
            c.cmd("LOGOUT")
            out[label][name] = dt
    print(json.dumps(out))


def cold_report(path):
    rounds = [json.loads(line) for line in open(path) if line.strip()]
    print(f"First look (cold): servers restarted before each of {len(rounds)} rounds, "
          "each operation on a fresh session, servers alternating first; medians")
    names = list(rounds[0][COLD_OPS[0][0]].keys())
    a, b = sorted(names, key=lambda n: n != "renkei")
    head = f"{'operation (cold)':<56} {a + ' s':>10} {b + ' s':>10} {'ratio':>7}  target   verdict"
    print(head)
    print("-" * len(head))
    for label, _ in COLD_OPS:
        med = {n: statistics.median(r[label][n] for r in rounds) for n in (a, b)}
        ratio = med[a] / med[b] if med[b] > 0 else float("inf")
        verdict = "ok" if ratio <= COLD_TARGET else "MISSED"
        print(f"{label:<56} {med[a]:>10.3f} {med[b]:>10.3f} {ratio:>6.2f}x  <= {COLD_TARGET:g}x  {verdict}")
    print("RAW-COLD " + json.dumps(rounds))


def vm_hwm_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bigmem(port, user, password, pid):
    c = Conn(port)
    c.ok(f'LOGIN "{user}" "{password}"')
    c.ok("EXAMINE INBOX")
    c.n += 1
    tag = b"T%05d" % c.n
    c.s.sendall(tag + b" FETCH 1 BODY.PEEK[]\r\n")
    # Read and drop: only the count and the end matter.
    total = 0
    tail = b""
    t = time.perf_counter()
    while True:
        chunk = c.s.recv(1 << 20)
        if not chunk:
            raise SystemExit("connection closed")
        total += len(chunk)
        tail = (tail + chunk)[-200:]
        if tail.endswith(b"\r\n") and (b"\r\n" + tag + b" OK") in tail:
            break
    dt = time.perf_counter() - t
    print(f"BODY.PEEK[] of a {total / 2**30:.2f} GiB message in {dt:.1f} s; "
          f"server peak resident memory (VmHWM) {vm_hwm_mib(pid):.0f} MiB (target < 200 MiB)")


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "cold":
        servers = [(s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])) for s in sys.argv[4:6]]
        cold(sys.argv[2], sys.argv[3], servers)
        return
    if len(sys.argv) == 3 and sys.argv[1] == "coldreport":
        cold_report(sys.argv[2])
        return
    if len(sys.argv) == 6 and sys.argv[1] == "bigmem":
        bigmem(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    if len(sys.argv) >= 2 and sys.argv[1] == "export" and len(sys.argv) == 6:
        export(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    elif len(sys.argv) == 7 and sys.argv[1] == "bench":
        servers = []
        for spec in sys.argv[5:7]:
            name, port = spec.rsplit(":", 1)
            servers.append((name, int(port)))
        bench(sys.argv[2], sys.argv[3], int(sys.argv[4]), servers)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
