"""The warm sandbox's init: runs as PID 1 inside one long-lived bubblewrap sandbox per slot.

Started by `warmslot.WarmSlot` as `/usr/bin/python3 -I -S /code/_zygote.py <fd>` (stdlib only: it runs
on the system interpreter inside the sandbox). For each request on the control socket (a JSON message
with the run's stdin/stdout/stderr as passed file descriptors) it forks a child that starts a new
session, takes the rlimits, gets a scrubbed environment and execs a fresh interpreter on
/code/<program>. Then, whatever the program did, it leaves nothing behind for the next run:
- every process of the run is killed (`kill(-1)` from PID 1 reaches everything else in the PID
  namespace, setsid daemons included) and reaped;
- /tmp is emptied (files, dot files, directories made unreadable);
- SysV IPC objects (shared memory, semaphores, message queues outlive their processes) are removed.
For the default interpreter (`/usr/bin/python3 -I`) the child does not even exec: it runs the program
in its forked copy of this interpreter (started with the same flags, site initialised, nothing of a
previous run in it: every run forks from the unchanged zygote; one difference: runs of a slot share
the zygote's string-hash seed, so set iteration order repeats between them). It is not dumpable, so the
runs (same uid) cannot ptrace it or read its memory or file descriptors, and as PID 1 it ignores every
signal they can send. It exits when the host closes the socket.
"""

import atexit
import ctypes
import json
import os
import resource
import runpy
import select
import signal
import socket
import stat
import sys
import threading
import traceback

PR_SET_DUMPABLE = 4
LIMITS = {"cpu": resource.RLIMIT_CPU, "as": resource.RLIMIT_AS, "nproc": resource.RLIMIT_NPROC,
          "fsize": resource.RLIMIT_FSIZE, "nofile": resource.RLIMIT_NOFILE, "core": resource.RLIMIT_CORE}  # fmt: skip
IPC_RMID = 0


def _run_here(path: str) -> int:
    """Run the program in this forked copy of the zygote's interpreter, as `python3 -I path` would:
    as __main__, SystemExit and tracebacks as the interpreter handles them, atexit and non-daemon
    threads at the end. Skips the ~15 ms of interpreter start-up a fresh exec costs."""
    sys.argv = [path]
    code = 0
    try:
        runpy.run_path(path, run_name="__main__")
    except SystemExit as e:
        if e.code is None:
            code = 0
        elif isinstance(e.code, int):
            code = e.code
        else:
            print(e.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    try:
        threading._shutdown()  # what the interpreter does at exit: wait for non-daemon threads
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        code = code or 120  # as the interpreter does when flushing stdout fails
    return code


def _child(request: dict, fds: list[int]) -> None:
    code = 127
    try:
        os.setsid()
        for fd, target in zip(fds, (0, 1, 2)):
            os.dup2(fd, target)
        os.closerange(3, 1 << 16)
        for name, (soft, hard) in request["rlimits"].items():
            resource.setrlimit(LIMITS[name], (soft, hard))
        os.chdir("/tmp")
        argv = request["argv"]
        if request.get("in_process"):
            code = _run_here(argv[-1])
        else:
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execve(argv[0], argv, request["env"])
    finally:
        os._exit(code)


def _kill_everything_else() -> None:
    """From PID 1, kill(-1) signals every other process of the namespace; reap until none is left."""
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            while True:
                os.waitpid(-1, 0)
        except ChildProcessError:
            pass
        try:
            os.kill(-1, 0)
        except ProcessLookupError:
            return  # nothing left to signal


def _wipe(path: str = "/tmp") -> None:
    for entry in os.scandir(path):
        full = entry.path
        try:
            if entry.is_dir(follow_symlinks=False):
                os.chmod(full, stat.S_IRWXU)  # a directory the run made unreadable is still ours
                _wipe(full)
                os.rmdir(full)
            else:
                os.unlink(full)
        except OSError:
            pass


def _remove_sysv_ipc(libc) -> None:
    for kind, ctl in (("shm", libc.shmctl), ("sem", libc.semctl), ("msg", libc.msgctl)):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            ident = int(line.split()[1])
            if kind == "sem":
                ctl(ident, 0, IPC_RMID)
            else:
                ctl(ident, IPC_RMID, None)


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    control = socket.socket(fileno=int(sys.argv[1]))
    control.send(json.dumps({"ready": True}).encode())
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 20, 3)
        if not message:
            break  # the host is gone: returning ends PID 1, and the kernel ends the namespace
        request = json.loads(message)
        if request.get("op") != "run":
            for fd in fds:
                os.close(fd)
            continue  # a late "kill" for a run that had already finished
        pid = os.fork()
        if pid == 0:
            _child(request, fds)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        killed = host_gone = False
        status = None
        while status is None:
            ready, _, _ = select.select([control, pidfd], [], [])
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
            elif control in ready:
                note = control.recv(1 << 16)
                host_gone = not note
                killed = True
                os.kill(pid, signal.SIGKILL)
        os.close(pidfd)
        _kill_everything_else()  # before reporting: the host reads the run's pipes until they close
        if host_gone:
            break
        code = None if killed else os.waitstatus_to_exitcode(status)
        control.send(json.dumps({"done": True, "returncode": code}).encode())
        # Nothing of the run is alive any more; the next request is read only after this cleanup.
        _wipe()
        _remove_sysv_ipc(libc)


if __name__ == "__main__":
    main()
