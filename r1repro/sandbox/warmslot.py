"""One long-lived bubblewrap sandbox per slot, so a run costs a fork + exec instead of a new sandbox.

Starting bubblewrap (namespaces, mounts, a tmpfs) costs about as much as starting Python, so a cold
sandbox ran at ~0.45x a plain subprocess runner. Here each slot starts bwrap once, with the same
isolation as a cold run (box.Sandbox._bwrap: user/pid/net/ipc/uts/cgroup namespaces, --cap-drop
ALL, read-only /usr, a size-capped private /tmp, the slot's own unprivileged uid, a scrubbed
environment), running `_zygote.py` as PID 1. Per run the host writes the program into the slot's
read-only /code, hands the zygote the run's stdin file and stdout/stderr pipes over a socket
(SCM_RIGHTS), and reads the pipes exactly as for a cold run (box._collect). The zygote forks a
child that takes the rlimits and runs the program in its copy of the pre-warmed interpreter (the
default `/usr/bin/python3 -I`) or execs the configured one; afterwards it kills every process of the
run, empties /tmp and removes SysV IPC objects, so no state passes from one run to the next.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

ZYGOTE = Path(__file__).with_name("_zygote.py")
START_TIMEOUT_S = 30.0


class SlotDied(RuntimeError):
    pass


class WarmSlot:
    def __init__(self, bwrap_argv_for, uid: int, python: str = "/usr/bin/python3"):
        """bwrap_argv_for(code_dir) -> the bwrap command line up to `--` (Sandbox._bwrap)."""
        self.uid = uid
        self._written: set[str] = set()
        self.code_dir = tempfile.mkdtemp(prefix="r1repro-slot-")
        os.chmod(self.code_dir, 0o755)
        shutil.copyfile(ZYGOTE, os.path.join(self.code_dir, "_zygote.py"))
        os.chmod(os.path.join(self.code_dir, "_zygote.py"), 0o644)
        host, inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = host
        self.log = tempfile.TemporaryFile()
        # -I as the runs' default interpreter, so that a run forked from the zygote (no exec) sees the
        # same sys.path and flags as `python3 -I main.py` would.
        argv = bwrap_argv_for(self.code_dir) + [python, "-I", "/code/_zygote.py", str(inside.fileno())]
        # Not --die-with-parent (it fires when the *thread* that started bwrap exits): the zygote exits
        # when the host's end of the socket closes, which happens when this process dies.
        argv = [a for a in argv if a != "--die-with-parent"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
                                     user=uid, group=uid, extra_groups=[], start_new_session=True,
                                     pass_fds=(inside.fileno(),), env={"PATH": "/usr/bin:/bin"})  # fmt: skip
        inside.close()
        self.control.settimeout(START_TIMEOUT_S)
        try:
            ready = self.control.recv(1 << 16)
        except OSError:
            ready = b""
        if not ready or not json.loads(ready).get("ready"):
            self.close()
            raise SlotDied(f"warm sandbox did not start: {self._stderr()}")
        self.control.settimeout(None)

    def _stderr(self) -> str:
        try:
            self.log.seek(0)
            return self.log.read()[-600:].decode(errors="replace").strip() or f"exit {self.proc.poll()}"
        except (OSError, ValueError):
            return "no output"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def write_program(self, filename: str, program: str) -> None:
        # Written in place: nothing reads it until the run starts, and a temp file + rename costs time per run
        # on an overlay /tmp (docs/architecture.md, measured facts). The run (another uid) needs it readable:
        # chmod once, on creation.
        path = os.path.join(self.code_dir, filename)
        with open(path, "w") as f:
            f.write(program)
        if filename not in self._written:
            os.chmod(path, 0o644)
            self._written.add(filename)

    def start_run(self, argv: list[str], env: dict, rlimits: dict, stdin_fd: int, stdout_w: int, stderr_w: int,
                  in_process: bool = False) -> None:  # fmt: skip
        message = json.dumps({"op": "run", "argv": argv, "env": env, "rlimits": rlimits,
                              "in_process": in_process}).encode()
        try:
            socket.send_fds(self.control, [message], [stdin_fd, stdout_w, stderr_w])
        except OSError as e:
            raise SlotDied(f"warm sandbox is gone: {e}") from e

    def finish_run(self, kill: bool, timeout: float = 10.0) -> int | None:
        """Wait for the zygote's report (after it cleaned up); kill the run first if asked. The
        returncode, or None when killed."""
        try:
            if kill:
                self.control.send(b'{"op": "kill"}')
            self.control.settimeout(timeout)
            reply = self.control.recv(1 << 16)
        except TimeoutError:
            raise  # the run is still going: the caller kills it
        except OSError as e:
            raise SlotDied(f"warm sandbox did not answer: {e}") from e
        finally:
            try:
                self.control.settimeout(None)
            except OSError:
                pass
        if not reply:
            raise SlotDied(f"warm sandbox exited: {self._stderr()}")
        code = json.loads(reply).get("returncode")
        return None if kill else code

    def close(self) -> None:
        try:
            self.control.close()  # the zygote exits on EOF, and the namespace with it
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()
        shutil.rmtree(self.code_dir, ignore_errors=True)
