"""What every live-kernel oracle here needs around network namespaces.

Shared by `htb_oracle.py` and `reasm_oracle.py` (they import it from their
own directory): running commands, signal handling that never leaves a
namespace behind, moving a thread into a namespace and back, and deleting
namespaces, including the ones a killed earlier run left. Python 3.11
standard library only.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000


class SetupError(Exception):
    """A transient failure while building or running one attempt."""


class Terminated(BaseException):
    """A termination signal arrived (raised where it is safe to stop)."""

    def __init__(self, signum):
        super().__init__(f"terminated by signal {signum}")
        self.signum = signum


_sig = {"cleaning": 0, "pending": None}


def _on_signal(signum, _frame):
    if _sig["pending"] is None:
        _sig["pending"] = signum
    if _sig["cleaning"] == 0:
        raise Terminated(signum)


def catch_signals():
    """SIGTERM, SIGHUP and SIGINT become `Terminated`, deferred while a
    `cleaning` block runs, so that namespaces are always deleted."""
    for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(s, _on_signal)


class cleaning:
    """Defers SIGTERM/SIGHUP/SIGINT while cleaning up; re-raises afterwards."""

    def __enter__(self):
        _sig["cleaning"] += 1

    def __exit__(self, *exc):
        _sig["cleaning"] -= 1
        if _sig["cleaning"] == 0 and _sig["pending"] is not None and exc[0] is None:
            raise Terminated(_sig["pending"])
        return False


def run(cmd, check=True, timeout=20, input_=None):
    """Runs `cmd` (a list), text in and out; a failure or timeout is a
    `SetupError` when `check`."""
    try:
        p = subprocess.run(cmd, input=input_, stdin=None if input_ is not None else subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise SetupError(f"timeout: {' '.join(cmd)}") from e
    if check and p.returncode != 0:
        raise SetupError(f"`{' '.join(cmd)}` failed (rc {p.returncode}): {p.stderr.strip()}")
    return p


_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


class in_ns:
    """Moves this thread into namespace `ns` and back. Inside, sockets are
    created in `ns`, and /proc/sys/net and /proc/thread-self/net are `ns`'s."""

    def __init__(self, ns):
        self.ns = ns

    def __enter__(self):
        self.back = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        tgt = os.open(f"/run/netns/{self.ns}", os.O_RDONLY)
        try:
            if libc().setns(tgt, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                os.close(self.back)
                raise SetupError(f"setns({self.ns}): {os.strerror(e)}")
        finally:
            os.close(tgt)
        return self

    def __exit__(self, *exc):
        try:
            if libc().setns(self.back, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                # Staying in the wrong namespace would corrupt everything after.
                print(f"{os.path.basename(sys.argv[0])}: FATAL: setns back failed: {os.strerror(e)}",
                      file=sys.stderr)
                os._exit(70)
        finally:
            os.close(self.back)
        return False


def socket_in(ns, *args):
    """A socket created inside namespace `ns` (only this thread moves, and back)."""
    with in_ns(ns):
        return socket.socket(*args)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def delete_netns(ns):
    """Kills what is left inside `ns`, then deletes it. Never raises; gives
    the errors met."""
    errors = []
    for _ in range(3):
        try:
            if not os.path.exists(f"/run/netns/{ns}"):
                return errors
            p = run(["ip", "netns", "pids", ns], check=False, timeout=10)
            for tok in p.stdout.split():
                if tok.isdigit() and int(tok) != os.getpid():
                    try:
                        os.kill(int(tok), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            p = run(["ip", "netns", "del", ns], check=False, timeout=10)
            if p.returncode == 0 or not os.path.exists(f"/run/netns/{ns}"):
                return errors
            errors.append(p.stderr.strip())
        except Exception as e:  # noqa: BLE001 - cleanup must go on
            errors.append(str(e))
        time.sleep(0.2)
    return errors


def sweep_stale_namespaces(ns_re):
    """Deletes the namespaces named by `ns_re` (a compiled pattern whose
    group 1 is the creating process id) whose creator is dead: what a killed
    earlier run left. Gives the names removed."""
    try:
        names = os.listdir("/run/netns")
    except OSError:
        return []
    gone = []
    for name in names:
        m = ns_re.match(name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            delete_netns(name)
            gone.append(name)
    return gone
