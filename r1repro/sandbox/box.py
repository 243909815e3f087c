"""Run untrusted programs (a model's code) against stdin, safely.

Backend `bwrap` (the default when bubblewrap works here): each run is
    prlimit (CPU, memory, processes, file size, open files, no core dumps)
      -> bwrap as an unprivileged uid, in new user/pid/net/ipc/uts/cgroup namespaces, --cap-drop ALL,
         read-only /usr only, the program read-only at /code, a private size-capped tmpfs /tmp as cwd,
         a scrubbed environment, --die-with-parent and --new-session
with a wall timeout and capped output enforced from outside. Killing the outer bwrap kills the PID
namespace, so nothing (not even a setsid daemon) outlives the run. No network namespace means no
route to anything, loopback listeners of the host included.

Every concurrent run gets its own uid (`uid_base + slot`): RLIMIT_NPROC counts processes per uid, and
a fork bomb in one run must not starve the runs next to it (it does nothing at all for uid 0).

Warm slots (`warm=True`, the default with bwrap): each slot keeps one such sandbox running, whose
init forks a child per run from a clean pre-warmed interpreter (or execs the configured interpreter)
and cleans up everything the run left behind (`warmslot.py`, `_zygote.py`): the same isolation at
about the cost of a plain subprocess, or less.

Backend `rlimits` (explicit opt-in only): the same limits, uid, scrubbed environment and private
working directory, but no namespaces: the program can read world-readable host files and use the
network. After each run every process of the slot's uid is killed.
"""

from __future__ import annotations

import math
import os
import queue
import selectors
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field

from .warmslot import SlotDied, WarmSlot

SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
STDERR_CAP = 4096
WARM_PYTHON = ("/usr/bin/python3", "-I")  # the zygote's own interpreter: its runs fork without exec


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 5.0  # wall clock, per run
    memory_mb: int = 512  # address space
    max_procs: int = 32  # per run (per uid)
    file_size_mb: int = 16  # largest file the program may write
    tmp_size_mb: int = 64  # its whole private /tmp (bwrap)
    max_output_bytes: int = 1 << 16  # stdout kept; more than this kills the run
    open_files: int = 256


@dataclass
class RunResult:
    stdout: str
    stderr: str
    returncode: int | None
    timed_out: bool = False
    output_truncated: bool = False
    wall_s: float = 0.0


class SandboxUnavailable(RuntimeError):
    pass


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


@dataclass
class Sandbox:
    backend: str = "bwrap"  # "bwrap" | "rlimits"
    interpreter: tuple[str, ...] = ("/usr/bin/python3", "-I")
    limits: Limits = field(default_factory=Limits)
    slots: int = 4  # concurrent runs (and distinct uids)
    uid_base: int = 61000
    filename: str = "main.py"
    ro_paths: tuple[str, ...] = ()  # extra read-only host paths (e.g. a toolchain outside /usr)
    warm: bool = True  # bwrap: one long-lived sandbox per slot (warmslot.py); False: a new bwrap per run

    def __post_init__(self):
        if self.backend not in ("bwrap", "rlimits"):
            raise ValueError(f"sandbox backend must be 'bwrap' or 'rlimits', got {self.backend!r}")
        self._uids: queue.Queue[int] = queue.Queue()
        for i in range(self.slots):
            self._uids.put(self.uid_base + i)
        self._warm_slots: dict[int, WarmSlot] = {}  # uid -> its sandbox; a uid is used by one run at a time
        self._slots_lock = threading.Lock()

    def close(self) -> None:
        """Stop the warm sandboxes (they also stop on their own when this process exits)."""
        with self._slots_lock:
            slots, self._warm_slots = list(self._warm_slots.values()), {}
        for slot in slots:
            slot.close()

    # -- command lines ------------------------------------------------------------------------------

    def _prlimit(self) -> list[str]:
        lim = self.limits
        cpu = max(1, math.ceil(lim.timeout_s))
        return [
            "prlimit",
            f"--cpu={cpu}:{cpu + 1}",
            f"--as={lim.memory_mb << 20}",
            f"--nproc={lim.max_procs}",
            f"--fsize={lim.file_size_mb << 20}",
            f"--nofile={lim.open_files}",
            "--core=0",
            "--",
        ]

    def _rlimits(self) -> dict[str, tuple[int, int]]:
        """The same limits as `_prlimit`, for the warm zygote to set in each run's child."""
        lim = self.limits
        cpu = max(1, math.ceil(lim.timeout_s))
        return {"cpu": (cpu, cpu + 1), "as": (lim.memory_mb << 20,) * 2, "nproc": (lim.max_procs,) * 2,
                "fsize": (lim.file_size_mb << 20,) * 2, "nofile": (lim.open_files,) * 2, "core": (0, 0)}  # fmt: skip

    def _bwrap(self, code_dir: str) -> list[str]:
        cmd = [
            "bwrap",
            "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try",
            # --as-pid-1: the program is the namespace's init, so when it exits the kernel kills everything
            # left inside; bwrap's own reaper init would instead be left as a zombie for the host's PID 1
            # to reap, and zombies count against the slot uid's process limit.
            "--disable-userns", "--as-pid-1", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
            "--uid", "65534", "--gid", "65534", "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
            "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
            "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
            "--proc", "/proc", "--dev", "/dev",
            "--size", str(self.limits.tmp_size_mb << 20), "--tmpfs", "/tmp",
            "--ro-bind", code_dir, "/code",
        ]  # fmt: skip
        for path in self.ro_paths:
            cmd += ["--ro-bind", path, path]
        # bwrap's root and /dev are tmpfs it creates: writable and not size-capped, so make them
        # read-only; the only writable place left is the capped /tmp (device nodes stay usable).
        cmd += ["--remount-ro", "/dev", "--remount-ro", "/"]
        cmd += ["--chdir", "/tmp", "--clearenv"]
        for key, value in SANDBOX_ENV.items():
            cmd += ["--setenv", key, value]
        return cmd + ["--"]

    # -- running ------------------------------------------------------------------------------------

    def check(self) -> None:
        """Raise SandboxUnavailable with the reason if this backend cannot run here."""
        if shutil.which("prlimit") is None:
            raise SandboxUnavailable("prlimit (util-linux) not found")
        if not os.path.exists(self.interpreter[0]):
            raise SandboxUnavailable(f"interpreter {self.interpreter[0]} not found")
        if self.backend == "bwrap":
            if bwrap_path() is None:
                raise SandboxUnavailable("bubblewrap (bwrap) not found; install it: apt-get install -y bubblewrap")
            result = self.run("print('ok')", "")
            if result.stdout.strip() != "ok":
                raise SandboxUnavailable(
                    f"bubblewrap cannot create a sandbox here (exit {result.returncode}): "
                    f"{result.stderr.strip()[-300:]}"
                )

    def run(self, program: str, stdin: str = "") -> RunResult:
        if self.backend == "bwrap" and self.warm:
            uid = self._uids.get()
            try:
                return self._run_warm(program, stdin, uid)
            finally:
                self._uids.put(uid)
        uid = self._uids.get()
        code_dir = tempfile.mkdtemp(prefix="r1repro-sbx-")
        result = None
        try:
            result = self._run(program, stdin, uid, code_dir)
            return result
        finally:
            if self.backend == "rlimits":
                _kill_uid(uid)
            # When the program exits by itself, the kernel empties its PID namespace before bwrap sees
            # the exit. When we kill it, the namespace dies asynchronously, and the slot's next run must
            # not inherit its processes (they count against RLIMIT_NPROC for this uid).
            if self.backend == "rlimits" or result is None or result.returncode is None:
                _wait_uid_gone(uid)
            shutil.rmtree(code_dir, ignore_errors=True)
            self._uids.put(uid)

    def _slot(self, uid: int) -> WarmSlot:
        with self._slots_lock:
            if getattr(self, "_slots_pid", None) != os.getpid():  # a forked copy must not share the parent's slots
                self._warm_slots, self._slots_pid = {}, os.getpid()
            slot = self._warm_slots.get(uid)
        if slot is None or not slot.alive():
            if slot is not None:
                slot.close()
            slot = WarmSlot(self._bwrap, uid)
            with self._slots_lock:
                self._warm_slots[uid] = slot
        return slot

    def _drop_slot(self, uid: int) -> None:
        with self._slots_lock:
            slot = self._warm_slots.pop(uid, None)
        if slot is not None:
            slot.close()

    def _run_warm(self, program: str, stdin: str, uid: int) -> RunResult:
        try:
            slot = self._slot(uid)
        except SlotDied as e:
            return RunResult(stdout="", stderr=str(e), returncode=None)
        slot.write_program(self.filename, program)
        with tempfile.TemporaryFile() as stdin_file:
            stdin_file.write(stdin.encode())
            stdin_file.seek(0)
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            start = time.monotonic()
            try:
                slot.start_run([*self.interpreter, f"/code/{self.filename}"], dict(SANDBOX_ENV), self._rlimits(),
                               stdin_file.fileno(), out_w, err_w,
                               in_process=self.interpreter == WARM_PYTHON)  # fmt: skip
            except SlotDied as e:
                os.close(out_r)
                os.close(err_r)
                self._drop_slot(uid)
                return RunResult(stdout="", stderr=str(e), returncode=None)
            finally:
                os.close(out_w)
                os.close(err_w)
            died = []

            def wait(timeout: float) -> int | None:
                try:
                    return slot.finish_run(kill=False, timeout=timeout)
                except TimeoutError:
                    raise subprocess.TimeoutExpired("sandbox", timeout) from None
                except SlotDied as e:
                    died.append(e)
                    return None

            def kill() -> None:
                try:
                    slot.finish_run(kill=True)
                except (SlotDied, TimeoutError) as e:
                    died.append(e)

            with os.fdopen(out_r, "rb", buffering=0) as out, os.fdopen(err_r, "rb", buffering=0) as err:
                result = _collect(out, err, self.limits, start, wait, kill)
        if died:
            self._drop_slot(uid)  # restarted on its next run
            result.returncode = None
        return result

    def _run(self, program: str, stdin: str, uid: int, code_dir: str) -> RunResult:
        os.chmod(code_dir, 0o755)
        program_path = os.path.join(code_dir, self.filename)
        with open(program_path, "w") as f:
            f.write(program)
        os.chmod(program_path, 0o644)
        with tempfile.TemporaryFile() as stdin_file:  # a file, not a pipe: no writer to block on
            stdin_file.write(stdin.encode())
            stdin_file.seek(0)
            if self.backend == "bwrap":
                cmd = self._prlimit() + self._bwrap(code_dir) + [*self.interpreter, f"/code/{self.filename}"]
                cwd = None
            else:
                work = os.path.join(code_dir, "work")
                os.mkdir(work)
                os.chown(work, uid, uid)
                cmd = self._prlimit() + [*self.interpreter, program_path]
                cwd = work
            start = time.monotonic()
            proc = subprocess.Popen(
                cmd,
                stdin=stdin_file,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(SANDBOX_ENV),
                cwd=cwd,
                user=uid,
                group=uid,
                extra_groups=[],
                start_new_session=True,  # its own process group, and no controlling terminal
                close_fds=True,
            )
            try:
                return _collect(proc.stdout, proc.stderr, self.limits, start, proc.wait, lambda: _kill(proc))
            finally:
                proc.stdout.close()
                proc.stderr.close()


def _collect(stdout, stderr, limits: Limits, start: float, wait, kill) -> RunResult:
    """Read stdout/stderr until exit, the wall deadline or the output cap, whichever comes first.
    wait(timeout) -> returncode (raises subprocess.TimeoutExpired); kill() ends the run."""
    out, err = bytearray(), bytearray()
    timed_out = truncated = False
    deadline = start + limits.timeout_s
    with selectors.DefaultSelector() as sel:
        for stream in (stdout, stderr):
            os.set_blocking(stream.fileno(), False)
            sel.register(stream, selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(timeout=remaining):
                try:
                    chunk = os.read(key.fileobj.fileno(), 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(key.fileobj)
                elif key.fileobj is stdout:
                    out += chunk
                    if len(out) > limits.max_output_bytes:
                        truncated = True
                        break
                elif len(err) < STDERR_CAP:
                    err += chunk[: STDERR_CAP - len(err)]
            if truncated:
                break
    returncode = None
    finished = False
    if not (timed_out or truncated):
        try:
            returncode = wait(max(0.05, deadline - time.monotonic()))
            finished = True
        except subprocess.TimeoutExpired:
            timed_out = True
    if not finished:
        kill()
    return RunResult(
        stdout=bytes(out[: limits.max_output_bytes]).decode(errors="replace"),
        stderr=bytes(err).decode(errors="replace"),
        returncode=returncode,
        timed_out=timed_out,
        output_truncated=truncated,
        wall_s=time.monotonic() - start,
    )


def _kill(proc: subprocess.Popen) -> None:
    # The outer bwrap: its death takes the sandbox's PID namespace (and everything in it) down with it.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.kill()
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def _uid_has_processes(uid: int) -> bool:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    return True
            except FileNotFoundError:
                pass
    return False


def _wait_uid_gone(uid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while _uid_has_processes(uid) and time.monotonic() < deadline:
        time.sleep(0.01)


def _kill_uid(uid: int) -> None:
    """Kill every process of `uid` (rlimits backend: nothing else contains a setsid daemon). `kill -1`
    run as that uid reaches exactly the processes that uid may signal: its own."""
    try:
        subprocess.run(["kill", "-9", "-1"], user=uid, group=uid, extra_groups=[], env=SANDBOX_ENV, timeout=5,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        pass
