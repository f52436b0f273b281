#!/usr/bin/env python3
"""Measure Linux HTB (sch_htb) on the live kernel, as a test oracle.

Usage:
    python3 oracle/htb_oracle.py SCENARIO.json [--warmup 2] [--window 6]
        [--repeats 2] [--max-attempts 6] [--sample-interval 0.25] [--quiet]
    python3 oracle/htb_oracle.py --script FILE.tc --flows FILE.flows [options as above]

For each attempt the script builds a fresh pair of network namespaces joined
by a veth (sender vS -> receiver vR, IPv6 off, static neighbours), installs the
scenario's HTB tree on vS, starts one UDP sender per flow (saturating or paced,
classified by SO_PRIORITY = classid), warms up, then measures a window by
dumping the class and qdisc counters over rtnetlink from a socket that lives
in the sender namespace, while the senders still run.  Runs with vCPU steal
above 0.5 %, with a backlogged leaf that ever had an empty queue, or with an
unshaped paced flow that arrived short of its rate are discarded and retried.

The second form takes the same inputs as `htb simulate SCRIPT --traffic FLOWS`:
a tc script (its device is replaced by the sender veth) and a flows file
(`CLASSID OFFERED PACKET_SIZE [START [STOP]]`, PACKET_SIZE = L2 frame length).

Exactly one JSON object is printed on stdout.  Exit codes: 0 = JSON printed
(valid or not), 2 = bad arguments or scenario, 77 = not root or network
namespaces unavailable, 128+N = terminated by signal N (after cleanup).

Python 3.11 standard library only.  See oracle/README.md.
"""

import argparse
import fcntl
import json
import os
import re
import secrets
import select
import shlex
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

from nslib import (SetupError, Terminated, catch_signals, cleaning, delete_netns, run, socket_in,
                   sweep_stale_namespaces)

EXIT_BAD_SCENARIO = 2
EXIT_SKIP = 77

NS_PREFIX = "htbo"
NS_RE = re.compile(r"^htbo-(\d+)-[0-9a-f]+$")
DEV_S, DEV_R = "vS", "vR"
IP_S, IP_R = "10.77.0.1", "10.77.0.2"
BASE_PORT = 40000
L2_OVERHEAD = 42  # UDP 8 + IPv4 20 + Ethernet 14: qdisc_pkt_len of a UDP/IPv4 frame
MAX_PAYLOAD = 1472  # one frame at MTU 1500
SNDBUF = 256 << 10  # the kernel doubles it
RCVBUF = 4 << 20

TC_H_ROOT = 0xFFFFFFFF
RTM_GETQDISC, RTM_GETTCLASS = 38, 42
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_DUMP_REQ = 0x301  # NLM_F_REQUEST | NLM_F_DUMP
NLM_F_DUMP_INTR = 0x10
TCA_KIND, TCA_OPTIONS, TCA_STATS2 = 1, 2, 7
TCA_STATS_BASIC, TCA_STATS_QUEUE, TCA_STATS_APP, TCA_STATS_PKT64 = 1, 3, 4, 8
TCA_HTB_PARMS, TCA_HTB_INIT, TCA_HTB_DIRECT_QLEN = 1, 2, 5
TCA_HTB_RATE64, TCA_HTB_CEIL64 = 6, 7

NLMSG = struct.Struct("=IHHII")
TCMSG = struct.Struct("=BBHiIII")
NLATTR = struct.Struct("=HH")
RATESPEC = struct.Struct("=BBHhHI")
U32X5 = struct.Struct("=5I")
HTB_XSTATS = struct.Struct("=3I2i")

MAX_STEAL = 0.005
SNAP_GOOD_S = 0.005  # retake a counter snapshot whose dump took longer than this
U32 = 1 << 32

# --------------------------------------------------------------------------
# Child programs (run with `ip netns exec NS python3 -S -c CODE ARGS...`).
# Both die with the controller (PR_SET_PDEATHSIG) and at a hard deadline.

SENDER_CODE = r"""
import ctypes, errno, os, random, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
ppid, prio, payload, ip, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
deadline, rate, sndbuf = float(sys.argv[6]), float(sys.argv[7]), int(sys.argv[8])
start_at, stop_at = float(sys.argv[9]), float(sys.argv[10])  # CLOCK_MONOTONIC; stop_at <= 0: no stop
if os.getppid() != ppid:
    sys.exit(0)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PRIORITY, prio)
try:
    s.setsockopt(socket.SOL_SOCKET, 32, sndbuf)  # SO_SNDBUFFORCE
except OSError:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
data, dst, send, mono = bytes(payload), (ip, port), s.sendto, time.monotonic
OK_ERRS = (errno.ENOBUFS, errno.EAGAIN, errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)
end = min(deadline, stop_at) if stop_at > 0 else deadline
now = mono()
if start_at > now:  # common start barrier (and the flow's START)
    time.sleep(start_at - now)
if rate <= 0:  # saturating: blocking sendto loop, HTB back-pressures us via the send buffer
    while mono() < end:
        for _ in range(64):
            try:
                send(data, dst)
            except OSError as e:
                if e.errno not in OK_ERRS:
                    raise
else:  # paced at the L2 rate, random phase, catch-up capped at 50 ms
    interval = (payload + 42) * 8.0 / rate
    nxt = mono() + random.random() * interval
    while True:
        now = mono()
        if now >= end:
            break
        if nxt > now:
            time.sleep(nxt - now)
        try:
            send(data, dst)
        except OSError as e:
            if e.errno not in OK_ERRS:
                raise
        nxt += interval
        lag = mono() - nxt
        if lag > 0.05:
            nxt += lag - 0.05
# After STOP: stay alive (quietly) so that the controller can tell a stopped flow from a dead sender.
now = mono()
if deadline > now:
    time.sleep(deadline - now)
"""

RECEIVER_CODE = r"""
import ctypes, json, os, select, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
ppid, ip, deadline, rcvbuf = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
ports = [int(p) for p in sys.argv[5].split(",")]
if os.getppid() != ppid:
    sys.exit(0)
socks = []
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((ip, p))
    s.setblocking(False)
    socks.append(s)
pk, by = [0] * len(socks), [0] * len(socks)
buf = bytearray(65536)
def drain():
    for i, s in enumerate(socks):
        rx = s.recv_into
        while True:
            try:
                n = rx(buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            pk[i] += 1
            by[i] += n
poll = select.poll()
for s in socks:
    poll.register(s, select.POLLIN)
poll.register(0, select.POLLIN | select.POLLHUP)
sys.stdout.write("ready\n")
sys.stdout.flush()
while time.monotonic() < deadline:
    ev = poll.poll(200)
    drain()
    if any(fd == 0 for fd, _ in ev):
        cmd = os.read(0, 4096)
        if not cmd:
            break
        drain()
        sys.stdout.write(json.dumps({"t": time.monotonic(), "pkts": pk, "bytes": by}) + "\n")
        sys.stdout.flush()
        continue
    time.sleep(0.001)  # batch wake-ups; the 4 MiB buffers absorb the gap
"""

# --------------------------------------------------------------------------
# Errors and signals


class ScenarioError(Exception):
    """Bad scenario file or a scenario the kernel/tc rejects -> exit 2."""


class SkipError(Exception):
    """Environment cannot run the oracle (not root, no netns) -> exit 77."""


def log(quiet, msg):
    if not quiet:
        try:
            print(f"htb_oracle: {msg}", file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed or a broken pipe must not abort a run
            pass


# --------------------------------------------------------------------------
# Small helpers


def parse_classid(s):
    if not isinstance(s, str):
        raise ValueError("classid must be a string like '1:10'")
    m = re.fullmatch(r"\s*([0-9a-fA-F]{1,4}):([0-9a-fA-F]{0,4})\s*", s)
    if not m:
        raise ValueError(f"bad classid {s!r} (want hex MAJOR:MINOR, e.g. '1:10')")
    return (int(m.group(1), 16) << 16) | int(m.group(2) or "0", 16)


def fmt_classid(h):
    return f"{h >> 16:x}:{h & 0xFFFF:x}"


def read_proc_stat():
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def read_text(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def u32_delta(a, b):
    return (b - a) % U32


def num(x):
    """JSON-friendly number: ints stay ints, integral floats become ints."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 2**53:
        return int(x)
    return x


# --------------------------------------------------------------------------
# Namespaces

# --------------------------------------------------------------------------
# rtnetlink


def parse_attrs(buf, off=0):
    attrs = {}
    n = len(buf)
    while off + 4 <= n:
        ln, typ = NLATTR.unpack_from(buf, off)
        if ln < 4 or off + ln > n:
            break
        attrs[typ & 0x3FFF] = buf[off + 4:off + ln]
        off += (ln + 3) & ~3
    return attrs


class Netlink:
    def __init__(self, ns):
        self.sock = socket_in(ns, socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))
        self.sock.settimeout(5.0)
        self.seq = int(time.time()) & 0xFFFF

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def dump(self, msg_type, ifindex):
        """Return the tcmsg payloads of one dump (list of bytes)."""
        self.seq += 1
        seq = self.seq
        req = NLMSG.pack(NLMSG.size + TCMSG.size, msg_type, NLM_F_DUMP_REQ, seq, 0) + TCMSG.pack(0, 0, 0, ifindex, 0, 0, 0)
        self.sock.send(req)
        out = []
        interrupted = False
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except socket.timeout as e:
                raise SetupError("netlink dump timed out") from e
            off = 0
            while off + NLMSG.size <= len(data):
                ln, typ, flags, sq, _pid = NLMSG.unpack_from(data, off)
                if ln < NLMSG.size:
                    raise SetupError("netlink: malformed message")
                if sq == seq:
                    if typ == NLMSG_DONE:
                        if interrupted:
                            raise SetupError("netlink dump interrupted")
                        return out
                    if typ == NLMSG_ERROR:
                        err = struct.unpack_from("=i", data, off + 16)[0]
                        if err:
                            raise SetupError(f"netlink error: {os.strerror(-err)}")
                    else:
                        if flags & NLM_F_DUMP_INTR:
                            interrupted = True
                        out.append(data[off + NLMSG.size:off + ln])
                off += (ln + 3) & ~3

    def classes(self, ifindex):
        res = {}
        for msg in self.dump(RTM_GETTCLASS, ifindex):
            _f, _p1, _p2, idx, handle, parent, _info = TCMSG.unpack_from(msg, 0)
            if idx != ifindex:
                continue
            a = parse_attrs(msg, TCMSG.size)
            if a.get(TCA_KIND, b"").rstrip(b"\0") != b"htb":
                continue
            c = {"handle": handle, "parent": parent}
            c.update(parse_stats2(a.get(TCA_STATS2, b"")))
            opts = parse_attrs(a.get(TCA_OPTIONS, b""))
            if TCA_HTB_PARMS in opts and len(opts[TCA_HTB_PARMS]) >= 44:
                p = opts[TCA_HTB_PARMS]
                r = RATESPEC.unpack_from(p, 0)
                ce = RATESPEC.unpack_from(p, 12)
                buffer, cbuffer, quantum, level, prio = U32X5.unpack_from(p, 24)
                rate = r[5]
                ceil = ce[5]
                if TCA_HTB_RATE64 in opts:
                    rate = struct.unpack_from("=Q", opts[TCA_HTB_RATE64])[0]
                if TCA_HTB_CEIL64 in opts:
                    ceil = struct.unpack_from("=Q", opts[TCA_HTB_CEIL64])[0]
                c["config"] = {
                    "rate_Bps": rate, "ceil_Bps": ceil,
                    "buffer_ticks": buffer, "cbuffer_ticks": cbuffer,
                    "quantum": quantum, "level": level, "prio": prio,
                    "overhead": r[2], "mpu": r[4], "linklayer": r[1],
                }
            res[handle] = c
        return res

    def root_qdisc(self, ifindex):
        for msg in self.dump(RTM_GETQDISC, ifindex):
            _f, _p1, _p2, idx, handle, parent, _info = TCMSG.unpack_from(msg, 0)
            if idx != ifindex or parent != TC_H_ROOT:
                continue
            a = parse_attrs(msg, TCMSG.size)
            q = {"handle": handle, "kind": a.get(TCA_KIND, b"").rstrip(b"\0").decode(errors="replace")}
            q.update(parse_stats2(a.get(TCA_STATS2, b"")))
            opts = parse_attrs(a.get(TCA_OPTIONS, b""))
            if TCA_HTB_INIT in opts and len(opts[TCA_HTB_INIT]) >= 20:
                ver, r2q, defcls, _dbg, direct_pkts = U32X5.unpack_from(opts[TCA_HTB_INIT], 0)
                q.update({"version": ver, "r2q": r2q, "defcls": defcls, "direct_pkts": direct_pkts})
            if TCA_HTB_DIRECT_QLEN in opts:
                q["direct_qlen"] = struct.unpack_from("=I", opts[TCA_HTB_DIRECT_QLEN])[0]
            return q
        return None


def parse_stats2(buf):
    st = parse_attrs(buf)
    out = {}
    if TCA_STATS_BASIC in st and len(st[TCA_STATS_BASIC]) >= 12:
        out["bytes"], out["packets"] = struct.unpack_from("=QI", st[TCA_STATS_BASIC])
        out["pkt64"] = False
    if TCA_STATS_PKT64 in st and len(st[TCA_STATS_PKT64]) >= 8:
        out["packets"] = struct.unpack_from("=Q", st[TCA_STATS_PKT64])[0]
        out["pkt64"] = True
    if TCA_STATS_QUEUE in st and len(st[TCA_STATS_QUEUE]) >= 20:
        (out["qlen"], out["backlog"], out["drops"], out["requeues"],
         out["overlimits"]) = U32X5.unpack_from(st[TCA_STATS_QUEUE])
    if TCA_STATS_APP in st and len(st[TCA_STATS_APP]) >= 20:
        (out["lends"], out["borrows"], out["giants"], out["tokens"],
         out["ctokens"]) = HTB_XSTATS.unpack_from(st[TCA_STATS_APP])
    return out


# --------------------------------------------------------------------------
# Scenario


def load_scenario(path):
    try:
        with open(path) as f:
            scn = json.load(f)
    except OSError as e:
        raise ScenarioError(f"cannot read {path}: {e}") from e
    except json.JSONDecodeError as e:
        raise ScenarioError(f"{path}: invalid JSON: {e}") from e
    if not isinstance(scn, dict):
        raise ScenarioError("scenario must be a JSON object")
    q = scn.get("qdisc")
    if not isinstance(q, str) or not q.strip():
        raise ScenarioError("'qdisc' must be a tc command string")
    cls = scn.get("classes", [])
    cmds = scn.get("commands", [])
    for key, lst in (("classes", cls), ("commands", cmds)):
        if not isinstance(lst, list) or not all(isinstance(c, str) for c in lst):
            raise ScenarioError(f"'{key}' must be a list of tc command strings")
    tc_cmds = []
    for c in [q] + cls + cmds:
        try:
            toks = shlex.split(c)
        except ValueError as e:
            raise ScenarioError(f"cannot parse command {c!r}: {e}") from e
        if len(toks) < 2 or toks[0] != "tc":
            raise ScenarioError(f"command must start with 'tc': {c!r}")
        if "-n" in toks or "-netns" in toks:
            raise ScenarioError(f"command must not select a namespace itself: {c!r}")
        toks = [t.replace("${DEV}", DEV_S).replace("$DEV", DEV_S) for t in toks[1:]]
        tc_cmds.append((toks, False, None))
    flows = scn.get("flows")
    if not isinstance(flows, list) or not flows:
        raise ScenarioError("'flows' must be a non-empty list")
    norm = []
    for i, fl in enumerate(flows):
        if not isinstance(fl, dict):
            raise ScenarioError(f"flow {i} must be an object")
        unknown = set(fl) - {"class", "payload", "rate_bps", "check_leaf", "comment"}
        if unknown:
            raise ScenarioError(f"flow {i}: unknown keys {sorted(unknown)}")
        c = fl.get("class")
        try:
            prio = 0 if c is None else parse_classid(c)
        except ValueError as e:
            raise ScenarioError(f"flow {i}: {e}") from e
        payload = fl.get("payload", 1000)
        if not isinstance(payload, int) or isinstance(payload, bool) or not 1 <= payload <= MAX_PAYLOAD:
            raise ScenarioError(f"flow {i}: payload must be an integer 1..{MAX_PAYLOAD}")
        rate = fl.get("rate_bps", 0) or 0
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate < 0:
            raise ScenarioError(f"flow {i}: rate_bps must be a number >= 0 (0/absent = saturating)")
        check_leaf = "auto"
        if "check_leaf" in fl:
            check_leaf = fl["check_leaf"]
            if check_leaf is not None:
                try:
                    check_leaf = parse_classid(check_leaf)
                except ValueError as e:
                    raise ScenarioError(f"flow {i}: check_leaf: {e}") from e
        norm.append(make_flow(i, c, payload, rate, check_leaf))
    return scn, tc_cmds, norm


# --------------------------------------------------------------------------
# Script + flows files (the inputs of `htb simulate SCRIPT --traffic FLOWS`)

# tc's rate units (iproute2 get_rate; a bare number is bit/s), as multipliers to bit/s.
RATE_UNITS = {"": 1.0, "bit": 1.0, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12,
              "kibit": 1024.0, "mibit": 1024.0 ** 2, "gibit": 1024.0 ** 3, "tibit": 1024.0 ** 4,
              "bps": 8.0, "kbps": 8e3, "mbps": 8e6, "gbps": 8e9, "tbps": 8e12,
              "kibps": 8 * 1024.0, "mibps": 8 * 1024.0 ** 2, "gibps": 8 * 1024.0 ** 3, "tibps": 8 * 1024.0 ** 4}
DURATION_UNITS = (("ns", 1e-9), ("us", 1e-6), ("\u00b5s", 1e-6), ("ms", 1e-3), ("s", 1.0))
NUM_RE = re.compile(r"^([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)([A-Za-z]*)$")
VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
ASSIGN_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


def parse_tc_rate(s):
    """tc rate -> bit/s, truncated to whole bytes per second like tc (and htb::rate::parse_rate)."""
    m = NUM_RE.match(s.strip())
    if not m or m.group(2).lower() not in RATE_UNITS:
        raise ValueError(f"invalid rate {s!r} (a tc rate such as 4mbit, or max)")
    byte_rate = int(float(m.group(1)) * RATE_UNITS[m.group(2).lower()] / 8.0)
    if byte_rate <= 0:
        raise ValueError(f"rate {s!r} is zero")
    return byte_rate * 8


def parse_duration_s(s):
    """A duration like 2s, 500ms, 1.5 (seconds) -> seconds (htb::sim::parse_duration)."""
    t = s.strip()
    scale = 1.0
    for suf, m in DURATION_UNITS:
        if t.endswith(suf):
            t, scale = t[:-len(suf)], m
            break
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"invalid time {s!r}") from None
    if not v >= 0 or v == float("inf"):
        raise ValueError(f"invalid time {s!r}")
    return v * scale


def _logical_lines(text):
    """(line number, text) with backslash continuations joined."""
    out, buf, start = [], "", None
    for n, line in enumerate(text.splitlines(), 1):
        if start is None:
            start = n
        if line.endswith("\\") and not line.lstrip().startswith("#"):
            buf += line[:-1] + " "
            continue
        out.append((start, buf + line))
        buf, start = "", None
    if buf.strip():
        out.append((start, buf))
    return out


def load_tc_script(path):
    """The tc lines of a user's shell script, ready to run in the sender namespace.

    Accepts what `htb simulate` accepts: comments, blank lines, backslash continuations,
    NAME=value assignments with $NAME/${NAME} expansion, a leading sudo or $TC, trailing
    redirections and `|| true`.  The device is always the sender veth: DEV=... is forced to
    vS, $DEV is vS even when the script does not set it, and the word after every `dev` is
    replaced.  A line that ends in `|| true` or silences stderr, and `tc qdisc del`, may fail
    (on a fresh device `qdisc del` always does); any other failure is an error.
    Returns a list of (tokens after `tc`, may_fail, "file:line").
    """
    try:
        with open(path) as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"cannot read {path}: {e}") from e
    name = os.path.basename(path)
    vars_ = {"DEV": DEV_S, "TC": "tc"}
    cmds = []
    for ln, line in _logical_lines(text):
        where = f"{name}:{ln}"
        try:
            lex = shlex.shlex(line, posix=True)
            lex.whitespace_split = True
            lex.commenters = "#"
            toks = list(lex)
        except ValueError as e:
            raise ScenarioError(f"{where}: cannot parse: {e}") from e
        if not toks:
            continue
        may_fail = False
        for i, t in enumerate(toks):
            if t in (";", "&", "&&", "|", "||", ";;"):
                rest = toks[i + 1:]
                if t == "||" and rest in (["true"], [":"]):
                    may_fail = True
                elif t == ";" and not rest:
                    pass
                else:
                    raise ScenarioError(f"{where}: only one tc command per line (found {t!r})")
                toks = toks[:i]
                break
        words = []
        skip_next = False
        for t in toks:
            if skip_next:
                skip_next = False
                continue
            if re.fullmatch(r"[0-9&]?>>?(&[0-9])?", t):  # `2>` followed by its target
                skip_next = not t.endswith(("&1", "&2"))
                may_fail = may_fail or t.startswith(("2", "&"))
                continue
            if re.fullmatch(r"[0-9&]?>>?\S+", t):
                may_fail = may_fail or t.startswith(("2", "&"))
                continue
            words.append(t)
        if not words:
            continue
        m = ASSIGN_RE.match(words[0])
        if len(words) == 1 and m:
            if m.group(1) != "DEV":
                vars_[m.group(1)] = _expand(m.group(2), vars_, where)
            continue
        if words[0] == "export" and len(words) == 2 and ASSIGN_RE.match(words[1]):
            m = ASSIGN_RE.match(words[1])
            if m.group(1) != "DEV":
                vars_[m.group(1)] = _expand(m.group(2), vars_, where)
            continue
        expanded = []
        for w in words:
            expanded.extend(_expand(w, vars_, where).split() if "$" in w else [w])
        while expanded and expanded[0] in ("sudo", "command", "exec"):
            expanded = expanded[1:]
        if not expanded or not (expanded[0] == "tc" or expanded[0].endswith("/tc")):
            raise ScenarioError(f"{where}: expected a tc command, found {expanded[:1]}")
        args = expanded[1:]
        if any(a in ("-n", "-netns", "-batch", "-b", "-force") for a in args):
            raise ScenarioError(f"{where}: tc options -n/-netns/-batch/-force are not supported here")
        args = [DEV_S if i > 0 and args[i - 1] == "dev" else a for i, a in enumerate(args)]
        if len(args) >= 2 and args[0] in ("qdisc", "q") and args[1] in ("del", "delete"):
            may_fail = True
        cmds.append((args, may_fail, where))
    if not cmds:
        raise ScenarioError(f"{path}: no tc command")
    return cmds


def _expand(word, vars_, where):
    def sub(m):
        name = m.group(1) or m.group(2)
        if name not in vars_:
            raise ScenarioError(f"{where}: variable ${name} is not set in the script")
        return vars_[name]
    return VAR_RE.sub(sub, word)


def make_flow(i, cls, payload, rate, check_leaf="auto", start_s=0.0, stop_s=None, where=None):
    try:
        prio = 0 if cls is None else parse_classid(cls)
    except ValueError as e:
        raise ScenarioError(f"{where or f'flow {i}'}: {e}") from e
    return {
        "index": i,
        "class": None if cls is None else fmt_classid(prio),
        "priority": prio,
        "payload": payload,
        "frame_len": payload + L2_OVERHEAD,
        "rate_bps": rate,
        "port": BASE_PORT + i,
        "check_leaf": check_leaf,
        "start_s": start_s,
        "stop_s": stop_s,
        "where": where,
    }


def load_flows_file(path):
    """`CLASSID OFFERED PACKET_SIZE [START [STOP]]` per line (htb::sim::parse_flows)."""
    try:
        with open(path) as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"cannot read {path}: {e}") from e
    name = os.path.basename(path)
    flows = []
    for ln, raw in enumerate(text.splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        where = f"{name}:{ln}"
        if not 3 <= len(words) <= 5:
            raise ScenarioError(f"{where}: expected CLASSID OFFERED PACKET_SIZE [START [STOP]], "
                                f"found {len(words)} fields")
        cls = None if words[0] == "-" else words[0]
        try:
            rate = 0 if words[1] == "max" else parse_tc_rate(words[1])
            size = int(words[2])
            start = parse_duration_s(words[3]) if len(words) > 3 else 0.0
            stop = parse_duration_s(words[4]) if len(words) > 4 else None
        except ValueError as e:
            raise ScenarioError(f"{where}: {e}") from e
        if not L2_OVERHEAD + 1 <= size <= L2_OVERHEAD + MAX_PAYLOAD:
            raise ScenarioError(f"{where}: packet size {size} is not a single UDP/IPv4 Ethernet frame "
                                f"({L2_OVERHEAD + 1}..{L2_OVERHEAD + MAX_PAYLOAD} bytes)")
        if stop is not None and stop <= start:
            raise ScenarioError(f"{where}: stop time is not after start time")
        flows.append(make_flow(len(flows), cls, size - L2_OVERHEAD, rate, "auto", start, stop, where))
    if not flows:
        raise ScenarioError(f"{path}: no flows")
    return flows


def resolve_flows(flows, classes, qdisc, warmup=0.0, window=0.0):
    """Where each flow lands (mirrors htb_classify for SO_PRIORITY + default).

    A saturating flow is checked for backlog only when it sends during the whole window
    (START before the warm-up ends, no STOP before the window ends).
    """
    handle = qdisc["handle"]
    default = (handle & 0xFFFF0000) | qdisc.get("defcls", 0)
    dcl = classes.get(default)
    default_leaf = default if dcl and dcl.get("config", {}).get("level", 1) == 0 else None
    out = []
    for fl in flows:
        prio = fl["priority"]
        cl = classes.get(prio)
        if prio == handle:
            lands = None  # X:0 -> direct queue
        elif cl and cl.get("config", {}).get("level", 1) == 0:
            lands = prio
        else:
            lands = default_leaf  # (filters, if the scenario adds any, may change this)
        whole_window = fl.get("start_s", 0.0) <= max(0.0, warmup - 0.5) and (
            fl.get("stop_s") is None or fl["stop_s"] >= warmup + window + 1.0)
        if fl["check_leaf"] != "auto":
            check = fl["check_leaf"]
        else:
            check = lands if fl["rate_bps"] == 0 and whole_window else None
        out.append({"lands_in": fmt_classid(lands) if lands is not None else "direct",
                    "check_leaf": fmt_classid(check) if check is not None else None})
    return out


# --------------------------------------------------------------------------
# One attempt


class Attempt:
    def __init__(self, tc_cmds, flows, opts, attempt_no):
        self.tc_cmds = tc_cmds
        self.flows = flows
        self.opts = opts
        self.no = attempt_no
        pid = os.getpid()
        self.ns_s = f"{NS_PREFIX}-{pid}-{secrets.token_hex(4)}"
        self.ns_r = f"{NS_PREFIX}-{pid}-{secrets.token_hex(4)}"
        self.created = []
        self.procs = []
        self.receiver = None
        self.nl = None
        self.errfiles = []
        self.tc_warnings = []

    # -- set-up ------------------------------------------------------------
    def build(self):
        for ns in (self.ns_s, self.ns_r):
            p = run(["ip", "netns", "add", ns], check=False)
            if p.returncode != 0:
                msg = f"`ip netns add` failed: {p.stderr.strip()}"
                raise SkipError(msg) if self.no == 1 else SetupError(msg)
            self.created.append(ns)
            if os.path.isdir("/proc/sys/net/ipv6"):
                run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                     "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
        run(["ip", "link", "add", DEV_S, "netns", self.ns_s, "type", "veth",
             "peer", "name", DEV_R, "netns", self.ns_r])
        run(["ip", "-n", self.ns_s, "addr", "add", f"{IP_S}/24", "dev", DEV_S])
        run(["ip", "-n", self.ns_r, "addr", "add", f"{IP_R}/24", "dev", DEV_R])
        for ns, dev in ((self.ns_s, DEV_S), (self.ns_r, DEV_R)):
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        info_s = json.loads(run(["ip", "-n", self.ns_s, "-j", "link", "show", "dev", DEV_S]).stdout)[0]
        info_r = json.loads(run(["ip", "-n", self.ns_r, "-j", "link", "show", "dev", DEV_R]).stdout)[0]
        self.ifindex = int(info_s["ifindex"])
        self.txqueuelen = info_s.get("txqlen")
        run(["ip", "-n", self.ns_s, "neigh", "replace", IP_R, "lladdr", info_r["address"],
             "dev", DEV_S, "nud", "permanent"])
        run(["ip", "-n", self.ns_r, "neigh", "replace", IP_S, "lladdr", info_s["address"],
             "dev", DEV_R, "nud", "permanent"])

    def apply_tc(self):
        for toks, may_fail, where in self.tc_cmds:
            cmd = ["tc", "-n", self.ns_s] + toks
            p = run(cmd, check=False)
            shown = (f"{where}: " if where else "") + "tc " + " ".join(shlex.quote(t) for t in toks)
            if p.returncode != 0 and may_fail:
                continue
            if p.returncode != 0:
                msg = f"`{shown}` failed (rc {p.returncode}): {p.stderr.strip()}"
                if "unknown" in p.stderr.lower() and "qdisc" in toks[:2] and "htb" in toks:
                    raise SkipError(msg)
                # The same commands worked in attempt 1: a later failure is transient, not the scenario.
                raise ScenarioError(msg) if self.no == 1 else SetupError(msg)
            if p.stderr.strip():
                self.tc_warnings.append(f"{shown}: {p.stderr.strip()}")

    def read_config(self):
        self.nl = Netlink(self.ns_s)
        self.qdisc0 = self.nl.root_qdisc(self.ifindex)
        err = ScenarioError if self.no == 1 else SetupError
        if not self.qdisc0 or self.qdisc0["kind"] != "htb":
            raise err(f"root qdisc of {DEV_S} is not htb: {self.qdisc0 and self.qdisc0['kind']}")
        self.classes0 = self.nl.classes(self.ifindex)
        if not self.classes0:
            raise err("the scenario creates no HTB class")
        self.resolved = resolve_flows(self.flows, self.classes0, self.qdisc0, self.opts.warmup, self.opts.window)
        for fl, r in zip(self.flows, self.resolved):
            if r["lands_in"] == "direct" and not fl["rate_bps"]:
                # Unshaped and unpaced, a blocking sender never blocks: it burns a whole vCPU and
                # starves the rest of the measurement.  (Always the same answer: a scenario error.)
                raise ScenarioError(f"{fl.get('where') or 'flow ' + str(fl['index'])}: a saturating (max) flow "
                                    "lands in the direct queue (unshaped): pace it with a rate instead")

    def start_traffic(self):
        # Every sender waits for a common start t0 (the flows' time zero), so that START/STOP
        # offsets and the warm-up mean the same as in `htb simulate`; the margin covers
        # spawning the interpreters.
        self.t0 = time.monotonic() + 0.3 + 0.02 * len(self.flows)
        deadline = self.t0 + self.opts.warmup + self.opts.window + 60
        ports = ",".join(str(f["port"]) for f in self.flows)
        ef = tempfile.TemporaryFile()
        self.errfiles.append(ef)
        self.receiver = subprocess.Popen(  # starts before t0: the receiver is ready before any packet
            ["ip", "netns", "exec", self.ns_r, sys.executable, "-S", "-c", RECEIVER_CODE,
             str(os.getpid()), IP_R, repr(deadline), str(RCVBUF), ports],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=ef, process_group=0)
        line = self._read_receiver_line(10.0)
        if line.strip() != "ready":
            raise SetupError(f"receiver did not start: {line!r} {self._errtext(ef)}")
        for fl in self.flows:
            ef = tempfile.TemporaryFile()
            self.errfiles.append(ef)
            p = subprocess.Popen(
                ["ip", "netns", "exec", self.ns_s, sys.executable, "-S", "-c", SENDER_CODE,
                 str(os.getpid()), str(fl["priority"]), str(fl["payload"]), IP_R, str(fl["port"]),
                 repr(deadline), repr(float(fl["rate_bps"])), str(SNDBUF),
                 repr(self.t0 + fl["start_s"]), repr(self.t0 + fl["stop_s"] if fl["stop_s"] is not None else 0.0)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ef, process_group=0)
            self.procs.append((p, ef))

    @staticmethod
    def _errtext(ef):
        try:
            ef.seek(0)
            return ef.read().decode(errors="replace").strip()[-2000:]
        except (OSError, ValueError):
            return ""

    def _read_receiver_line(self, timeout):
        r = self.receiver
        end = time.monotonic() + timeout
        buf = b""
        fd = r.stdout.fileno()
        while not buf.endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0:
                return buf.decode(errors="replace")
            rl, _, _ = select.select([fd], [], [], left)
            if not rl:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
        return buf.decode(errors="replace")

    def receiver_snapshot(self):
        try:
            if self.receiver is None or self.receiver.poll() is not None:
                return None
            os.write(self.receiver.stdin.fileno(), b"s\n")
            line = self._read_receiver_line(2.0)
            return json.loads(line)
        except (OSError, ValueError):
            return None

    def dead_senders(self):
        dead = []
        for i, (p, ef) in enumerate(self.procs):
            rc = p.poll()
            if rc is not None:
                dead.append(f"sender {i} exited rc={rc}: {self._errtext(ef)}")
        return dead

    # -- measurement -------------------------------------------------------
    def snapshot(self):
        best = None
        for _ in range(4):
            t0 = time.monotonic()
            cls = self.nl.classes(self.ifindex)
            qd = self.nl.root_qdisc(self.ifindex)
            t1 = time.monotonic()
            snap = {"t": (t0 + t1) / 2, "dur": t1 - t0, "classes": cls, "qdisc": qd}
            if best is None or snap["dur"] < best["dur"]:
                best = snap
            if snap["dur"] <= SNAP_GOOD_S:
                break
        return best

    def measure(self):
        o = self.opts
        t_build = self.t0
        self.spawn_overrun = time.monotonic() - self.t0  # > 0: senders started late
        time.sleep(max(0.0, self.t0 + o.warmup - time.monotonic()))
        dead = self.dead_senders()
        if dead:
            raise SetupError("; ".join(dead))
        checks = sorted({r["check_leaf"] for r in self.resolved if r["check_leaf"]})
        check_ids = [parse_classid(c) for c in checks]
        qlen_zero = {c: 0 for c in checks}
        qlen_min = {c: None for c in checks}
        qlen_missing = {c: 0 for c in checks}
        leaf_zero = {}  # every leaf: samples with an empty queue (for the paced-flow check)

        def sample(classes):
            for h, st in classes.items():
                if st.get("config", {}).get("level") == 0:
                    leaf_zero[h] = leaf_zero.get(h, 0) + (st.get("qlen", 0) == 0)
            for c, h in zip(checks, check_ids):
                st = classes.get(h)
                if st is None or "qlen" not in st:
                    qlen_missing[c] += 1
                    continue
                q = st["qlen"]
                qlen_min[c] = q if qlen_min[c] is None else min(qlen_min[c], q)
                if q == 0:
                    qlen_zero[c] += 1

        stat0 = read_proc_stat()
        load0 = read_text("/proc/loadavg")
        s0 = self.snapshot()
        rx0 = self.receiver_snapshot()
        sample(s0["classes"])
        n_samples = 1
        max_gap = 0.0
        last = s0["t"]
        dump_durs = [s0["dur"]]
        period = o.sample_interval
        end = s0["t"] + o.window
        k = 1
        while True:
            target = s0["t"] + k * period
            if target >= end - period / 2:
                break
            now = time.monotonic()
            if now < target:
                time.sleep(target - now)
            elif now - target > period:  # we were descheduled: skip missed slots
                k = int((now - s0["t"]) / period) + 1
                continue
            t0 = time.monotonic()
            cls = self.nl.classes(self.ifindex)
            t1 = time.monotonic()
            dump_durs.append(t1 - t0)
            sample(cls)
            n_samples += 1
            max_gap = max(max_gap, t1 - last)
            last = t1
            k += 1
        now = time.monotonic()
        if now < end:
            time.sleep(end - now)
        s1 = self.snapshot()
        stat1 = read_proc_stat()
        rx1 = self.receiver_snapshot()
        sample(s1["classes"])
        n_samples += 1
        max_gap = max(max_gap, s1["t"] - last)
        dump_durs.append(s1["dur"])
        dead = self.dead_senders()

        # ---- evaluate
        d = [b - a for a, b in zip(stat0, stat1)]
        tot = sum(d) or 1
        steal = d[7] / tot
        busy = (tot - d[3] - d[4] - d[7]) / tot
        dt = s1["t"] - s0["t"]
        reasons = []
        if steal > MAX_STEAL:
            reasons.append(f"vCPU steal {steal * 100:.2f}% > {MAX_STEAL * 100:.1f}%")
        for c in checks:
            if qlen_zero[c] or qlen_missing[c]:
                reasons.append(f"leaf {c} not backlogged: qlen 0 in {qlen_zero[c]}/{n_samples} samples"
                               + (f", missing in {qlen_missing[c]}" if qlen_missing[c] else ""))
        reasons.extend(dead)
        if set(s0["classes"]) != set(s1["classes"]):
            reasons.append("class set changed during the window")

        classes = {}
        for h in sorted(s1["classes"]):
            a, b = s0["classes"].get(h), s1["classes"][h]
            if a is None:
                continue
            dbytes = b.get("bytes", 0) - a.get("bytes", 0)
            if b.get("pkt64"):
                dpk = b["packets"] - a["packets"]
            else:
                dpk = u32_delta(a.get("packets", 0), b.get("packets", 0))
            classes[fmt_classid(h)] = {
                "rate_bps": round(dbytes * 8 / dt, 1),
                "bytes": dbytes,
                "packets": dpk,
                "lends": u32_delta(a.get("lends", 0), b.get("lends", 0)),
                "borrows": u32_delta(a.get("borrows", 0), b.get("borrows", 0)),
                "drops": u32_delta(a.get("drops", 0), b.get("drops", 0)),
                "overlimits": u32_delta(a.get("overlimits", 0), b.get("overlimits", 0)),
                "qlen_end": b.get("qlen"),
            }
        qa, qb = s0["qdisc"], s1["qdisc"]
        q_bytes = qb["bytes"] - qa["bytes"]
        q_pk = (qb["packets"] - qa["packets"]) if qb.get("pkt64") else u32_delta(qa["packets"], qb["packets"])
        top = [h for h, c in s1["classes"].items() if c["parent"] in (TC_H_ROOT, qb["handle"]) and h in s0["classes"]]
        top_bytes = sum(s1["classes"][h]["bytes"] - s0["classes"][h]["bytes"] for h in top)
        qdisc = {
            "rate_bps": round(q_bytes * 8 / dt, 1),
            "bytes": q_bytes,
            "packets": q_pk,
            "drops": u32_delta(qa.get("drops", 0), qb.get("drops", 0)),
            "overlimits": u32_delta(qa.get("overlimits", 0), qb.get("overlimits", 0)),
            "requeues": u32_delta(qa.get("requeues", 0), qb.get("requeues", 0)),
            "direct_pkts": u32_delta(qa.get("direct_pkts", 0), qb.get("direct_pkts", 0)),
        }
        # No packet ever took the direct queue -> exactly 0 (the two dumps are not atomic,
        # so the difference below carries +-1..2 frames of noise otherwise).
        direct_rate = 0.0 if qb.get("direct_pkts", 0) == 0 else round((q_bytes - top_bytes) * 8 / dt, 1)

        rx = None
        if rx0 and rx1 and rx1["t"] > rx0["t"]:
            rdt = rx1["t"] - rx0["t"]
            rx = []
            for i, fl in enumerate(self.flows):
                dp = rx1["pkts"][i] - rx0["pkts"][i]
                db = rx1["bytes"][i] - rx0["bytes"][i]
                rx.append(round((db + L2_OVERHEAD * dp) * 8 / rdt, 1))

        # A paced flow that HTB does not hold back (direct queue, or a leaf that was empty in at
        # least 80 % of the samples) must have arrived at its rate: otherwise the sender was
        # starved of CPU and offered less than the flows file says.
        for i, (fl, r) in enumerate(zip(self.flows, self.resolved)):
            if not fl["rate_bps"] or fl["start_s"] > max(0.0, o.warmup - 0.5) or (
                    fl["stop_s"] is not None and fl["stop_s"] < o.warmup + o.window + 1.0):
                continue
            lands = r["lands_in"]
            free = lands == "direct" or leaf_zero.get(parse_classid(lands), 0) >= 0.8 * n_samples
            if not free:
                continue
            if rx is None:
                reasons.append(f"paced flow {i}: no receiver counts")
            elif rx[i] < 0.99 * fl["rate_bps"]:
                reasons.append(f"paced flow {i} ({lands}) under-delivered: received "
                               f"{rx[i] / 1e6:.3f} of {fl['rate_bps'] / 1e6:.3f} Mbit/s (sender starved)")

        return {
            "attempt": self.no,
            "valid": not reasons,
            "reasons": reasons,
            "namespaces": [self.ns_s, self.ns_r],
            "steal_frac": round(steal, 5),
            "host_busy_frac": round(busy, 4),
            "loadavg_start": load0,
            "loadavg_end": read_text("/proc/loadavg"),
            "window_s": round(dt, 4),
            "window_overrun_s": round(dt - o.window, 4),
            "warmup_s": round(s0["t"] - t_build, 3),
            "samples": n_samples,
            "max_sample_gap_s": round(max_gap, 4),
            "max_dump_ms": round(max(dump_durs) * 1000, 3),
            "snapshot_dump_ms": [round(s0["dur"] * 1000, 3), round(s1["dur"] * 1000, 3)],
            "qlen_ok": {c: qlen_zero[c] == 0 and qlen_missing[c] == 0 for c in checks},
            "qlen_min": qlen_min,
            "qlen_zero_samples": qlen_zero,
            "classes": classes,
            "qdisc": qdisc,
            "direct_rate_bps": direct_rate,
            "receiver_rate_bps": rx,
            "spawn_after_t0_s": round(self.spawn_overrun, 3),
        }

    # -- teardown ----------------------------------------------------------
    def teardown(self):
        errors = []
        procs = [p for p, _ in self.procs] + ([self.receiver] if self.receiver else [])
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            except OSError as e:
                errors.append(f"killpg {p.pid}: {e}")
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                errors.append(f"process {p.pid} did not exit")
            for f in (p.stdin, p.stdout):
                if f:
                    try:
                        f.close()
                    except OSError:
                        pass
        if self.nl:
            self.nl.close()
        for ef in self.errfiles:
            try:
                ef.close()
            except OSError:
                pass
        for ns in reversed(self.created):
            errors.extend(delete_netns(ns))
        return errors


# --------------------------------------------------------------------------
# Driver


def median_num(vals):
    return num(statistics.median(vals))


def aggregate(valid_runs):
    if not valid_runs:
        return {}, None, None
    names = set(valid_runs[0]["classes"])
    for r in valid_runs[1:]:
        names &= set(r["classes"])
    classes = {}
    for c in sorted(names, key=parse_classid):
        agg = {}
        for k in ("rate_bps", "bytes", "packets", "lends", "borrows", "drops", "overlimits"):
            agg[k] = median_num([r["classes"][c][k] for r in valid_runs])
        agg["rate_bps"] = round(float(agg["rate_bps"]), 1)
        classes[c] = agg
    qdisc = {}
    for k in ("rate_bps", "bytes", "packets", "drops", "overlimits", "requeues", "direct_pkts"):
        qdisc[k] = median_num([r["qdisc"][k] for r in valid_runs])
    qdisc["rate_bps"] = round(float(qdisc["rate_bps"]), 1)
    direct = round(float(statistics.median([r["direct_rate_bps"] for r in valid_runs])), 1)
    return classes, qdisc, direct


def environment():
    ver = run(["tc", "-V"], check=False).stdout.strip()
    params = {}
    pdir = "/sys/module/sch_htb/parameters"
    try:
        for n in sorted(os.listdir(pdir)):
            params[n] = read_text(os.path.join(pdir, n))
    except OSError:
        pass
    return {"kernel": os.uname().release, "tc": ver, "psched": read_text("/proc/net/psched"),
            "sch_htb_params": params}


def check_environment():
    if os.geteuid() != 0:
        raise SkipError("must run as root (network namespaces, tc)")
    for tool in ("ip", "tc"):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":") + ["/usr/sbin", "/sbin"]):
            raise SkipError(f"`{tool}` (iproute2) not found")
    if not os.path.exists("/proc/self/ns/net"):
        raise SkipError("kernel without network namespaces")


def lock_path():
    for d in ("/run/lock", "/run", "/tmp"):
        if os.path.isdir(d) and os.access(d, os.W_OK):
            return os.path.join(d, "htb_oracle.lock")
    return "/tmp/htb_oracle.lock"


def acquire_lock(timeout, quiet):
    """One oracle at a time on this machine: concurrent runs would perturb each other."""
    path = lock_path()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    t0 = time.monotonic()
    announced = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd, time.monotonic() - t0
        except BlockingIOError:
            pass
        if time.monotonic() - t0 >= timeout:
            os.close(fd)
            return None, time.monotonic() - t0
        if not announced:
            log(quiet, f"waiting for {path} (another oracle run is active)")
            announced = True
        time.sleep(0.2)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Measure Linux HTB on the live kernel (test oracle).")
    ap.add_argument("scenario", nargs="?", help="scenario JSON (or use --script and --flows)")
    ap.add_argument("--script", help="tc script, as for `htb simulate SCRIPT` (with --flows)")
    ap.add_argument("--flows", help="flows file, as for `htb simulate --traffic FLOWS` (with --script)")
    ap.add_argument("--warmup", type=float, default=2.0, help="seconds of traffic before the window (default 2)")
    ap.add_argument("--window", type=float, default=6.0, help="measurement window in seconds (default 6)")
    ap.add_argument("--repeats", type=int, default=2, help="valid runs wanted (default 2)")
    ap.add_argument("--max-attempts", type=int, default=6, help="attempts in total, valid or not (default 6)")
    ap.add_argument("--sample-interval", type=float, default=0.25, help="qlen sampling period (default 0.25 s)")
    ap.add_argument("--lock-timeout", type=float, default=1800.0,
                    help="seconds to wait for other oracle runs on this machine to finish (default 1800)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    o = ap.parse_args(argv)
    if o.warmup < 0 or o.window < 1 or o.repeats < 1 or o.max_attempts < 1 or not 0.05 <= o.sample_interval <= o.window:
        ap.error("need warmup >= 0, window >= 1, repeats >= 1, max-attempts >= 1, 0.05 <= sample-interval <= window")

    if (o.scenario is None) == (o.script is None) or (o.script is None) != (o.flows is None):
        ap.error("give either SCENARIO.json or both --script FILE and --flows FILE")
    try:
        if o.scenario is not None:
            scn, tc_cmds, flows = load_scenario(o.scenario)
            source = {"scenario": os.path.abspath(o.scenario)}
        else:
            scn, tc_cmds, flows = {}, load_tc_script(o.script), load_flows_file(o.flows)
            source = {"scenario": os.path.abspath(o.script), "script": os.path.abspath(o.script),
                      "flows_file": os.path.abspath(o.flows)}
    except ScenarioError as e:
        print(f"htb_oracle: bad scenario: {e}", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    try:
        check_environment()
    except SkipError as e:
        print(f"htb_oracle: skip: {e}", file=sys.stderr)
        return EXIT_SKIP

    catch_signals()

    t_start = time.monotonic()
    try:
        lock_fd, lock_wait = acquire_lock(o.lock_timeout, o.quiet)
    except Terminated as e:
        print(f"htb_oracle: {e}", file=sys.stderr)
        return 128 + e.signum
    if lock_fd is None:
        out = {"valid": False, "reasons": [f"timed out after {lock_wait:.0f} s waiting for {lock_path()}"],
               **source, "valid_runs": 0, "attempts": 0,
               "classes": {}, "qdisc": None, "direct_rate_bps": None, "runs": []}
        out.update(environment())
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
        return 0
    runs = []
    tc_warnings = []
    resolved = None
    config = {}
    qdisc_config = None
    cleanup_errors = []
    need = min(2, o.repeats)
    try:
        with cleaning():
            swept = sweep_stale_namespaces(NS_RE)
        if swept:
            log(o.quiet, f"removed stale namespaces: {' '.join(swept)}")
        attempt_no = 0
        while attempt_no < o.max_attempts:
            n_valid = sum(r["valid"] for r in runs)
            if n_valid >= o.repeats or n_valid + (o.max_attempts - attempt_no) < need:
                break
            attempt_no += 1
            t_a = time.monotonic()
            att = Attempt(tc_cmds, flows, o, attempt_no)
            try:
                att.build()
                att.apply_tc()
                att.read_config()
                if resolved is None:
                    resolved = att.resolved
                    tc_warnings = att.tc_warnings
                    qdisc_config = {k: att.qdisc0.get(k) for k in ("handle", "r2q", "defcls", "direct_qlen")}
                    qdisc_config["handle"] = fmt_classid(qdisc_config["handle"])
                    qdisc_config["txqueuelen"] = att.txqueuelen
                    for h, c in sorted(att.classes0.items()):
                        cfg = dict(c.get("config", {}))
                        cfg["parent"] = "root" if c["parent"] in (TC_H_ROOT, att.qdisc0["handle"]) else fmt_classid(c["parent"])
                        config[fmt_classid(h)] = cfg
                att.start_traffic()
                res = att.measure()
            except (SetupError, OSError) as e:
                res = {"attempt": attempt_no, "valid": False, "reasons": [f"setup: {e}"]}
            finally:
                with cleaning():
                    errs = att.teardown()
                    cleanup_errors.extend(errs)
            res["wall_s"] = round(time.monotonic() - t_a, 2)
            runs.append(res)
            if res.get("classes"):
                rates = " ".join(f"{c}={v['rate_bps'] / 1e6:.3f}" for c, v in res["classes"].items())
                log(o.quiet, f"attempt {attempt_no}: {'valid' if res['valid'] else 'INVALID'} "
                    f"steal={res['steal_frac'] * 100:.2f}% busy={res['host_busy_frac'] * 100:.0f}% "
                    f"Mbit/s: {rates} direct={res['direct_rate_bps'] / 1e6:.3f} ({res['wall_s']} s)"
                    + (f" reasons: {'; '.join(res['reasons'])}" if res["reasons"] else ""))
            else:
                log(o.quiet, f"attempt {attempt_no}: INVALID {'; '.join(res['reasons'])}")
    except ScenarioError as e:
        print(f"htb_oracle: bad scenario: {e}", file=sys.stderr)
        return EXIT_BAD_SCENARIO
    except SkipError as e:
        print(f"htb_oracle: skip: {e}", file=sys.stderr)
        return EXIT_SKIP
    except Terminated as e:
        print(f"htb_oracle: {e}; cleaned up", file=sys.stderr)
        return 128 + e.signum

    valid_runs = [r for r in runs if r["valid"]]
    classes, qdisc, direct = aggregate(valid_runs)
    ok = len(valid_runs) >= need
    reasons = []
    if not ok:
        reasons.append(f"only {len(valid_runs)} valid run(s) of {len(runs)} attempt(s); need {need}")
        for r in runs:
            if not r["valid"]:
                reasons.append(f"attempt {r['attempt']}: {'; '.join(r['reasons'])}")
    out = {
        "valid": ok,
        "reasons": reasons,
        **source,
        "valid_runs": len(valid_runs),
        "attempts": len(runs),
        "params": {"warmup_s": o.warmup, "window_s": o.window, "repeats": o.repeats,
                   "max_attempts": o.max_attempts, "sample_interval_s": o.sample_interval,
                   "max_steal_frac": MAX_STEAL, "l2_overhead": L2_OVERHEAD},
        "classes": classes,
        "qdisc": qdisc,
        "direct_rate_bps": direct,
        "flows": [{"class": f["class"], "priority": f["priority"], "payload": f["payload"],
                   "frame_len": f["frame_len"], "rate_bps": f["rate_bps"] or None,
                   "start_s": f["start_s"], "stop_s": f["stop_s"],
                   **(resolved[i] if resolved else {})} for i, f in enumerate(flows)],
        "config": {"qdisc": qdisc_config, "classes": config},
        "tc_warnings": tc_warnings,
        "cleanup_errors": cleanup_errors,
        "runs": runs,
        "wall_s": round(time.monotonic() - t_start, 2),
        "lock_wait_s": round(lock_wait, 2),
    }
    out.update(environment())
    expected = scn.get("expected_rate_bps")
    if isinstance(expected, dict) and classes:
        chk = {}
        for c, v in expected.items():
            try:
                key = "qdisc" if c == "qdisc" else ("direct" if c == "direct" else fmt_classid(parse_classid(c)))
            except ValueError:
                continue
            got = qdisc["rate_bps"] if key == "qdisc" else direct if key == "direct" else classes.get(key, {}).get("rate_bps")
            if got is not None and isinstance(v, (int, float)) and v:
                chk[c] = {"expected_bps": v, "measured_bps": got, "rel_err": round((got - v) / v, 5)}
        out["expected_check"] = chk
    sys.stdout.write(json.dumps(out, indent=1) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
