#!/usr/bin/env python3
"""Small SMTP clients for bench/loadbench.sh (127.0.0.1 only).

  bigmail  send one generated message of exactly --size bytes (default 25 MiB)
           with a base64 attachment of --attach bytes of base64 text
           (default 20 MiB, about 15 MiB decoded) and a text/csv part that
           fills the rest; prints the size sent.
  idle     open --count connections, read each greeting, send EHLO, read the
           reply, then hold them open: writes --ready when all are up and
           exits on SIGTERM or after --hold seconds.

Standard library only. Every loop is bounded in count and time.
"""

import argparse
import base64
import random
import resource
import signal
import smtplib
import socket
import sys
import time

HOST = "127.0.0.1"


def build_message(size: int, attach: int) -> bytes:
    head = (
        "From: bench@example.org\r\n"
        "To: sink@example.com\r\n"
        "Subject: bench 25 MiB with attachment\r\n"
        "Date: Fri, 17 May 2024 12:00:00 +0200\r\n"
        "Message-ID: <bigmail@bench.example.org>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
        "--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee attachments.\r\n"
        "--XX\r\nContent-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=blob.bin\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    # base64 text of `attach` bytes in 76-character lines (78 with CRLF).
    raw_len = (attach // 78) * 57
    enc = base64.b64encode(random.Random(1).randbytes(raw_len))
    lines = [enc[i:i + 76] for i in range(0, len(enc), 76)]
    b64 = b"\r\n".join(lines) + b"\r\n"
    mid = (
        "--XX\r\nContent-Type: text/csv\r\n"
        "Content-Disposition: attachment; filename=metrics.csv\r\n\r\n"
    ).encode()
    tail = b"\r\n--XX--\r\n"
    fill = size - len(head) - len(b64) - len(mid) - len(tail)
    if fill < 0:
        raise SystemExit("bigmail: --attach too large for --size")
    row = b"2024-05-17T10:00:00Z,web-01,cpu,97.5\r\n"
    csv = row * (fill // len(row))
    csv += b"x" * (fill - len(csv))  # pad the last line to the exact size
    msg = head + b64 + mid + csv + tail
    assert len(msg) == size, (len(msg), size)
    return msg


def bigmail(args) -> int:
    msg = build_message(args.size, args.attach)
    with smtplib.SMTP(HOST, args.port, timeout=args.timeout) as s:
        s.ehlo("bench.example.org")
        refused = s.sendmail("bench@example.org", ["sink@example.com"], msg)
        if refused:
            print(f"bigmail: refused {refused}", file=sys.stderr)
            return 1
    print(len(msg))
    return 0


def read_reply(sock: socket.socket, deadline: float) -> bytes:
    """Read one (possibly multi-line) SMTP reply; return its last line."""
    buf = b""
    while time.monotonic() < deadline:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk
        lines = buf.split(b"\r\n")
        for line in lines[:-1]:
            if len(line) >= 4 and line[3:4] == b" ":
                return line
        if len(buf) > 65536:
            raise ConnectionError("reply too long")
    raise TimeoutError("no reply")


def idle(args) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    conns = []
    deadline = time.monotonic() + args.timeout
    for i in range(args.count):
        s = socket.create_connection((HOST, args.port), timeout=args.timeout)
        greet = read_reply(s, deadline)
        if not greet.startswith(b"220"):
            print(f"idle: connection {i}: greeting {greet!r}", file=sys.stderr)
            return 1
        s.sendall(b"EHLO idle.bench.example.org\r\n")
        reply = read_reply(s, deadline)
        if not reply.startswith(b"250"):
            print(f"idle: connection {i}: EHLO reply {reply!r}", file=sys.stderr)
            return 1
        conns.append(s)
    with open(args.ready, "w") as f:
        f.write(f"{len(conns)}\n")
    end = time.monotonic() + args.hold
    while not stop["now"] and time.monotonic() < end:
        time.sleep(0.1)
    for s in conns:
        try:
            s.sendall(b"QUIT\r\n")
        except OSError:
            pass
        s.close()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bigmail")
    b.add_argument("--port", type=int, required=True)
    b.add_argument("--size", type=int, default=25 << 20)
    b.add_argument("--attach", type=int, default=20 << 20)
    b.add_argument("--timeout", type=float, default=120)
    i = sub.add_parser("idle")
    i.add_argument("--port", type=int, required=True)
    i.add_argument("--count", type=int, default=1000)
    i.add_argument("--ready", required=True)
    i.add_argument("--hold", type=float, default=120)
    i.add_argument("--timeout", type=float, default=60)
    args = p.parse_args()
    return bigmail(args) if args.cmd == "bigmail" else idle(args)


if __name__ == "__main__":
    sys.exit(main())
