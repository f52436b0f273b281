#!/usr/bin/env python3
"""Live-kernel FIB oracle (stdlib only): load routes into a fresh network
namespace and answer `ip route get fibmatch` for many addresses over
rtnetlink (RTM_GETROUTE + RTM_F_FIB_MATCH).

    fib_oracle.py --step ROUTES.batch ADDRS.txt OUT.txt [--step ...]

For each step, in order: `ip -n NS -batch ROUTES.batch` (lines such as
`route add 10.0.0.0/8 dev fibo0 metric 7`; an empty file adds nothing),
then every address of ADDRS.txt (one per line) is looked up; OUT.txt gets
one line per address, in order: `ADDR LEN METRIC TYPE` for a match, or
`ADDR ! ERRNO` for an error (101 = ENETUNREACH = no route).

The namespace has one ifb device `fibo0`, up, no addresses, `lo` down, and
both FIBs flushed and checked empty before loading (see
shared/docs/kernel-oracle-methods.md §3). It is always deleted at the end.

Exit status: 0 done; 77 the kernel cannot be used here (not root, no `ip`,
no namespaces, no ifb), with the reason on stderr; 1 anything else.
"""

import argparse
import os
import random
import shutil
import socket
import struct
import subprocess
import sys

SKIP = 77
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLMSG_ERROR = 2
NLM_F_REQUEST = 1
RTM_F_FIB_MATCH = 0x2000
RTA_DST, RTA_PRIORITY = 1, 6
NLMSG = struct.Struct("=IHHII")
RTMSG = struct.Struct("=BBBBBBBBI")
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33
WINDOW = 512


class Skip(Exception):
    pass


def run(cmd, check=True):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


def query(addrs_path, out_path):
    """Runs inside the namespace: answer every address, in order."""
    addrs = [l.strip() for l in open(addrs_path) if l.strip()]
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    for opt in (SO_SNDBUFFORCE, SO_RCVBUFFORCE):
        s.setsockopt(socket.SOL_SOCKET, opt, 64 << 20)
    s.bind((0, 0))
    answers = [None] * len(addrs)
    sent = done = 0
    while done < len(addrs):
        while sent < len(addrs) and sent - done < WINDOW:
            a = addrs[sent]
            fam = socket.AF_INET6 if ":" in a else socket.AF_INET
            raw = socket.inet_pton(fam, a)
            body = RTMSG.pack(fam, len(raw) * 8, 0, 0, 0, 0, 0, 0, RTM_F_FIB_MATCH)
            body += struct.pack("=HH", 4 + len(raw), RTA_DST) + raw
            body += b"\0" * (-len(body) % 4)
            s.send(NLMSG.pack(NLMSG.size + len(body), RTM_GETROUTE, NLM_F_REQUEST, sent + 1, 0) + body)
            sent += 1
        data = s.recv(1 << 20)
        off = 0
        while off + NLMSG.size <= len(data):
            ln, typ, _flags, seq, _pid = NLMSG.unpack_from(data, off)
            i = seq - 1
            if typ == NLMSG_ERROR:
                err = -struct.unpack_from("=i", data, off + 16)[0]
                if 0 <= i < len(addrs) and answers[i] is None:
                    answers[i] = f"! {err}"
                    done += 1
            elif typ == RTM_NEWROUTE:
                fam, dlen, _s, _t, _tb, _p, _sc, rtype, _f = RTMSG.unpack_from(data, off + NLMSG.size)
                metric = 0
                a = off + NLMSG.size + RTMSG.size
                while a + 4 <= off + ln:
                    alen, atype = struct.unpack_from("=HH", data, a)
                    if alen < 4:
                        break
                    if atype & 0x3FFF == RTA_PRIORITY:
                        metric = struct.unpack_from("=I", data, a + 4)[0]
                    a += (alen + 3) & ~3
                if 0 <= i < len(addrs) and answers[i] is None:
                    answers[i] = f"{dlen} {metric} {rtype}"
                    done += 1
            off += (ln + 3) & ~3
            if ln == 0:
                break
    with open(out_path, "w") as f:
        for a, ans in zip(addrs, answers):
            f.write(f"{a} {ans}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--step", nargs=3, action="append", metavar=("ROUTES", "ADDRS", "OUT"))
    ap.add_argument("--query", nargs=2, metavar=("ADDRS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.query:
        query(*args.query)
        return 0
    if os.geteuid() != 0:
        raise Skip("not root: network namespaces need root")
    if shutil.which("ip") is None:
        raise Skip("the `ip` command (iproute2) is not installed")
    ns = f"htbfib-{os.getpid()}-{random.randrange(1 << 32):08x}"
    p = run(["ip", "netns", "add", ns], check=False)
    if p.returncode != 0:
        raise Skip(f"ip netns add failed: {p.stderr.strip()}")
    try:
        p = run(["ip", "-n", ns, "link", "add", "fibo0", "type", "ifb"], check=False)
        if p.returncode != 0:
            raise Skip(f"cannot create an ifb device: {p.stderr.strip()}")
        run(["ip", "-n", ns, "link", "set", "fibo0", "up"])
        run(["ip", "-n", ns, "-6", "route", "flush", "table", "all"], check=False)
        run(["ip", "-n", ns, "route", "flush", "table", "all"], check=False)
        for fam in ("-4", "-6"):
            left = run(["ip", "-n", ns, fam, "route", "show", "table", "all"]).stdout.strip()
            if left:
                raise RuntimeError(f"FIB not empty after flush ({fam}): {left[:200]}")
        for routes, addrs, out in args.step or []:
            if os.path.getsize(routes) > 0:
                run(["ip", "-n", ns, "-batch", routes])
            run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__), "--query", addrs, out])
    finally:
        run(["ip", "netns", "del", ns], check=False)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Skip as e:
        print(f"fib_oracle: skipped: {e}", file=sys.stderr)
        sys.exit(SKIP)
    except Exception as e:  # noqa: BLE001 - report and fail
        print(f"fib_oracle: error: {e}", file=sys.stderr)
        sys.exit(1)
