"""The code_tests sandbox, attacked by real programs and checked from outside: no file written, no
secret read, no connection made, no process left behind; each attack scores 0 and scoring goes on.

Needs bubblewrap: installed with apt-get when missing (the CI runs as root)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import subprocess
import tempfile
import textwrap
import time
import uuid

import pytest

from r1repro.rewards import STATS, resolve_reward
from r1repro.sandbox.box import Limits, Sandbox

pytestmark = pytest.mark.sandbox

UID_BASE = 62000  # this module's sandboxes use their own uid range, so leftovers are attributable


@pytest.fixture(scope="module", autouse=True)
def bubblewrap():
    if shutil.which("bwrap") is None:
        if os.geteuid() != 0:
            pytest.fail(
                "bubblewrap (bwrap) is missing and we are not root to install it: apt-get install -y bubblewrap")
        subprocess.run(["apt-get", "update"], check=False, capture_output=True, timeout=300)
        done = subprocess.run(["apt-get", "install", "-y", "bubblewrap"], capture_output=True, text=True, timeout=300)
        if shutil.which("bwrap") is None:
            pytest.fail(f"could not install bubblewrap: {done.stderr.strip()[-300:]}")


@pytest.fixture(scope="module")
def box():
    return Sandbox(limits=Limits(timeout_s=2.0, tmp_size_mb=16, file_size_mb=4), slots=4, uid_base=UID_BASE)


@pytest.fixture()
def exposed_dir():
    """A host directory anyone may read and write: only the sandbox, not file permissions, keeps it safe."""
    path = tempfile.mkdtemp(prefix="r1repro-exposed-")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def fenced(code: str) -> str:
    return f" <think> plan </think> <answer>\n```python\n{textwrap.dedent(code).strip()}\n```\n</answer>"


def pids_of_uids(low: int, high: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if low <= os.stat(f"/proc/{entry}").st_uid < high:
                    found.append(int(entry))
            except FileNotFoundError:
                pass
    return found


def run_pids_of_uids(low: int, high: int) -> list[int]:
    """Processes of the sandbox uids other than the warm slots themselves (bwrap and its zygote, whose
    command lines name /code/_zygote.py): what a run could have left behind."""
    left = []
    for pid in pids_of_uids(low, high):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"/code/_zygote.py" in f.read():
                    continue
        except OSError:
            continue
        left.append(pid)
    return left


def pids_with_marker(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


REVERSE_TESTS = [{"input": "abc\n", "output": "cba\n"}, {"input": "hello\n", "output": "olleh"},
                 {"input": "x\n", "output": "x"}]


def test_correct_wrong_partial():
    reward = resolve_reward({"name": "code_tests", "timeout": 5})
    completions = [
        fenced("print(input()[::-1])"),
        fenced("print(input())"),  # passes only the palindrome "x"
        fenced("s = input()\nprint(s[::-1] if len(s) > 1 else 'nope')"),  # 2 of 3
        "no code at all",
        fenced("print(1)"),
    ]
    tests = [REVERSE_TESTS] * 4 + [None]
    assert reward(completions, tests=tests) == [1.0, pytest.approx(1 / 3), pytest.approx(2 / 3), 0.0, None]
    binary = resolve_reward({"name": "code_tests", "binary": True})
    assert binary(completions[:3], tests=[REVERSE_TESTS] * 3) == [1.0, 0.0, 0.0]


def test_tests_column_as_json_string_and_chat_messages():
    reward = resolve_reward("code_tests")
    completion = [{"role": "assistant", "content": fenced("print(int(input()) * 2)")}]
    assert reward([completion], tests=[json.dumps([{"input": "21", "output": "42"}])]) == [1.0]


def test_attacks_are_contained_and_scoring_goes_on(exposed_dir):
    """Every attack in one batch, next to a correct program; each is checked from outside."""
    token = uuid.uuid4().hex
    os.environ["R1REPRO_TEST_SECRET"] = token
    secret = os.path.join(exposed_dir, "secret.txt")
    with open(secret, "w") as f:
        f.write(token)
    os.chmod(secret, 0o644)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    unix_path = os.path.join(exposed_dir, "sock")
    unix_listener = socket.socket(socket.AF_UNIX)
    unix_listener.bind(unix_path)
    os.chmod(unix_path, 0o777)
    unix_listener.listen(8)
    unix_listener.setblocking(False)
    marker = f"9{int(token[:8], 16) % 10**8}"
    escape_file = os.path.join(exposed_dir, "escaped.txt")
    host_tmp_file = f"/tmp/r1repro-escape-{token}"

    attacks = {
        "infinite loop": "while True: pass",
        "sleep": "import time; time.sleep(60)",
        "fork bomb": "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass",
        "memory hog": "x = [bytearray(1 << 20) for _ in range(10_000)]",
        "output flood": "while True: print('y' * 10_000)",
        "write outside": f"""
            open({host_tmp_file!r}, 'w').write('x')  # lands in its private /tmp, never the host's
            wrote = False
            for p in [{escape_file!r}, '/usr/evil', '/code/evil', '/evil', '/dev/evil']:
                try:
                    open(p, 'w').write('x'); wrote = True
                except OSError: pass
            if wrote: print('{token}')""",
        "read secret": f"print(open({secret!r}).read())",
        "read env": f"""
            import os
            out = str(dict(os.environ))
            for p in ['/proc/1/environ', '/proc/self/environ',
                      '/proc/{os.getpid()}/environ', '/proc/{os.getppid()}/environ']:
                try: out += open(p, 'rb').read().decode(errors='replace')
                except OSError: pass
            print(out)""",
        "connect": f"""
            import socket
            for family, addr in [(socket.AF_INET, ('127.0.0.1', {port})), (socket.AF_UNIX, {unix_path!r})]:
                try:
                    s = socket.socket(family); s.settimeout(1); s.connect(addr); print('{token}')
                except OSError: pass""",
        "kill parent": f"""
            import os, signal
            for pid in [os.getppid(), 1, -1, {os.getpid()}, {os.getppid()}]:
                try: os.kill(pid, signal.SIGKILL)
                except OSError: pass
            print('still here')""",
        "setsid daemon": f"""
            import os
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv('/usr/bin/sleep', ['sleep', '{marker}'])
            print('parent done')""",
        "fill disk": """
            import os
            n = 0
            try:
                for i in range(100_000):
                    with open(f'/tmp/fill{i}', 'wb') as f:
                        for _ in range(64):
                            f.write(b'0' * (1 << 16)); n += 1 << 16
            except OSError:
                pass
            print(n)""",
    }
    correct = fenced("print(input()[::-1])")
    names = list(attacks)
    completions = [fenced(code) for code in attacks.values()] + [correct]
    # Every attack "expects" what it would print on success, so a leak would score > 0.
    expected = {"read secret": token, "read env": token, "connect": token, "write outside": token, "kill parent": "x"}
    tests = [[{"input": "", "output": expected.get(n, "never")}] for n in names] + [REVERSE_TESTS]

    reward = resolve_reward({"name": "code_tests", "timeout": 2, "parallel": 4, "max_output_bytes": 1 << 16})
    timeouts_before = STATS["code_tests"]["timeouts"]
    start = time.monotonic()
    scores = reward(completions, tests=tests)
    elapsed = time.monotonic() - start
    try:
        assert dict(zip(names + ["correct"], scores)) == {**{n: 0.0 for n in names}, "correct": 1.0}
        # and from outside: nothing appeared where the attacks wrote
        assert not os.path.exists(escape_file) and not os.path.exists(host_tmp_file)
        assert not os.path.exists("/usr/evil")
        with pytest.raises(BlockingIOError):
            listener.accept()
        with pytest.raises(BlockingIOError):
            unix_listener.accept()
        time.sleep(0.5)
        assert pids_with_marker(marker) == [], "the setsid daemon survived"
        assert STATS["code_tests"]["timeouts"] - timeouts_before >= 2  # the loop and the sleep
        assert elapsed < 30
    finally:
        listener.close()
        unix_listener.close()
        os.environ.pop("R1REPRO_TEST_SECRET", None)


def test_direct_checks_from_outside(box, exposed_dir):
    """The same attacks through Sandbox.run, where we can read exactly what the program saw."""
    token = uuid.uuid4().hex
    os.environ["R1REPRO_TEST_SECRET"] = token
    try:
        r = box.run("import os\nprint(dict(os.environ))\nprint(open('/proc/1/environ','rb').read())")
        assert token not in r.stdout and "R1REPRO_TEST_SECRET" not in r.stdout
    finally:
        os.environ.pop("R1REPRO_TEST_SECRET")
    r = box.run("import os\nprint(os.getuid(), os.getpid())\nprint([p for p in os.listdir('/proc') if p.isdigit()])")
    uid, pid = r.stdout.split("\n")[0].split()
    visible = set(eval(r.stdout.split("\n")[1]))
    assert uid == "65534" and visible <= {"1", pid}  # unprivileged, in its own PID namespace (init + itself)
    # the disk filler hits the tmpfs cap (16 MiB here), the file-size limit caps each file
    r = box.run(
        "n=0\ntry:\n    for i in range(10**5):\n        f=open(f'/tmp/f{i}','wb')\n"
        "        for _ in range(16): f.write(b'0'*(1<<16)); n+=1<<16\n        f.close()\n"
        "except OSError: pass\nprint(n)"
    )
    assert 0 < int(r.stdout.strip()) <= 16 << 20
    # a fork bomb leaves no process of the sandbox uids behind
    r = box.run("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass")
    assert r.timed_out
    time.sleep(0.3)
    assert run_pids_of_uids(UID_BASE, UID_BASE + 4) == []
    # the output cap
    r = box.run("while True: print('z' * 4096)")
    assert r.output_truncated and len(r.stdout) <= box.limits.max_output_bytes


def test_rlimits_backend_is_weaker_and_opt_in(exposed_dir):
    """The control: without namespaces the same secret *is* readable; this is why `rlimits` must be
    asked for explicitly, and why the isolation tests above can fail."""
    secret = os.path.join(exposed_dir, "secret.txt")
    with open(secret, "w") as f:
        f.write("visible")
    os.chmod(secret, 0o644)
    weak = Sandbox(backend="rlimits", limits=Limits(timeout_s=2.0), slots=1, uid_base=UID_BASE + 50)
    assert weak.run(f"print(open({secret!r}).read())").stdout.strip() == "visible"
    r = weak.run("import os\nif os.fork() == 0:\n    os.setsid(); import time; time.sleep(60)\nprint('ok')")
    assert r.stdout.strip() == "ok"
    time.sleep(0.3)
    assert pids_of_uids(UID_BASE + 50, UID_BASE + 51) == []  # reaped by uid
    with pytest.raises(ValueError, match="sandbox must be 'bwrap'"):
        resolve_reward({"name": "code_tests", "sandbox": "none"})


def test_missing_bubblewrap_is_refused(monkeypatch, tmp_path):
    """Without bwrap on PATH, the default refuses at start-up with one line and the way out."""
    (tmp_path / "prlimit").symlink_to(shutil.which("prlimit"))
    monkeypatch.setenv("PATH", str(tmp_path))
    import r1repro.rewards.code as code

    monkeypatch.setattr(code, "_SANDBOXES", {})
    with pytest.raises(ValueError, match=r"bubblewrap \(bwrap\) not found.*sandbox: rlimits"):
        resolve_reward({"name": "code_tests", "timeout": 3})


# --- the warm sandbox: one long-lived sandbox per slot, so a run must leave nothing for the next ----


@pytest.fixture()
def one_slot():
    """A single slot: every run lands in the same long-lived sandbox, after the previous one."""
    box = Sandbox(limits=Limits(timeout_s=2.0, max_procs=16), slots=1, uid_base=UID_BASE + 20)
    yield box
    box.close()


LEAVE_STATE = """
import ctypes, os, socket, sys, builtins, json
libc = ctypes.CDLL(None, use_errno=True)
open('/tmp/left.txt', 'w').write('x')
open('/tmp/.hidden', 'w').write('x')
os.makedirs('/tmp/d/e'); open('/tmp/d/e/f', 'w').write('x'); os.chmod('/tmp/d', 0)
print('msg', libc.msgget(4242, 0o1000 | 0o666), 'shm', libc.shmget(4243, 4096, 0o1000 | 0o666),
      'sem', libc.semget(4244, 1, 0o1000 | 0o666))
json.LEFT = builtins.LEFT = 'module state'
if os.fork() == 0:
    os.setsid()
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(('127.0.0.1', 4245)); s.listen(1)
    s.set_inheritable(True)  # the daemon keeps listening after exec
    os.execv('/usr/bin/sleep', ['sleep', MARKER])
import time
for _ in range(200):
    if socket.socket().connect_ex(('127.0.0.1', 4245)) == 0:
        print('listening'); break
    time.sleep(0.01)
# and try to take over the zygote (PID 1), which runs every later program of this slot
for attempt in [lambda: os.kill(1, 9), lambda: os.kill(1, 15), lambda: open('/proc/1/mem', 'rb').read(1),
                lambda: os.listdir('/proc/1/fd'), lambda: open('/proc/1/environ').read(),
                lambda: print('ptrace', libc.ptrace(16, 1, 0, 0), ctypes.get_errno())]:
    try:
        attempt()
    except Exception as e:
        print(type(e).__name__)
print('done')
"""

INSPECT_STATE = """
import ctypes, os, socket, json, builtins
libc = ctypes.CDLL(None, use_errno=True)
print(json.dumps({
    'tmp': sorted(os.listdir('/tmp')),
    'pids': sorted(p for p in os.listdir('/proc') if p.isdigit()),
    'ipc': [len(open(f'/proc/sysvipc/{k}').read().splitlines()) - 1 for k in ('msg', 'shm', 'sem')],
    'msgget': libc.msgget(4242, 0), 'modules': hasattr(json, 'LEFT') or hasattr(builtins, 'LEFT'),
    'listener': socket.socket().connect_ex(('127.0.0.1', 4245)) == 0, 'cwd': os.getcwd(),
}))
"""


def test_warm_slot_leaves_no_state_for_the_next_run(one_slot):
    marker = f"9{uuid.uuid4().int % 10**8}"
    first = one_slot.run(LEAVE_STATE.replace("MARKER", repr(marker)))
    assert first.returncode == 0 and first.stdout.strip().endswith("done"), first.stderr
    assert "msg -1" not in first.stdout and "shm -1" not in first.stdout  # the IPC objects did exist
    assert "ptrace -1" in first.stdout and first.stdout.count("PermissionError") == 3
    assert "listening" in first.stdout  # a loopback listener existed while the run was alive
    assert pids_with_marker(marker) == []  # the setsid daemon died with the run
    state = json.loads(one_slot.run(INSPECT_STATE).stdout)
    pid = state["pids"][-1]
    assert state == {"tmp": [], "pids": sorted(["1", pid]), "ipc": [0, 0, 0], "msgget": -1, "modules": False,
                     "listener": False, "cwd": "/tmp"}  # fmt: skip
    assert run_pids_of_uids(UID_BASE + 20, UID_BASE + 21) == []


def test_warm_runs_keep_the_limits_and_survive_hostile_runs(one_slot):
    r = one_slot.run("import resource as r\n"
                     "print([r.getrlimit(x) for x in (r.RLIMIT_AS, r.RLIMIT_NPROC, r.RLIMIT_CPU, r.RLIMIT_CORE)])")
    assert r.stdout.strip() == str([(512 << 20,) * 2, (16, 16), (2, 3), (0, 0)])
    assert resource.getrlimit(resource.RLIMIT_AS)[0] != 512 << 20  # set in the run, not inherited from here
    # a run that closes its output and keeps going is still timed out; a fork bomb is cleaned up
    r = one_slot.run("import os, time\nos.close(1); os.close(2)\nwhile True: time.sleep(0.01)")
    assert r.timed_out and r.returncode is None
    r = one_slot.run("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass")
    assert r.timed_out
    assert one_slot.run("print(input()[::-1])", "abc").stdout == "cba\n"
    assert run_pids_of_uids(UID_BASE + 20, UID_BASE + 21) == []


def test_a_dead_warm_slot_is_replaced(one_slot):
    assert one_slot.run("print(1)").stdout == "1\n"
    (slot,) = one_slot._warm_slots.values()
    slot.proc.kill()
    slot.proc.wait()
    assert one_slot.run("print(2)").stdout == "2\n"  # a new sandbox for the slot
    assert list(one_slot._warm_slots.values()) != [slot]


def test_cold_sandbox_still_available():
    """warm=False starts a new bwrap per run (the previous design, kept as the reference in bench/)."""
    cold = Sandbox(limits=Limits(timeout_s=2.0), slots=1, uid_base=UID_BASE + 30, warm=False)
    r = cold.run("import os\nprint(os.getpid(), os.getuid())")
    assert r.stdout.split() == ["1", "65534"]


def test_warm_runs_behave_like_a_fresh_interpreter(one_slot):
    """Runs of the default interpreter are forked from the zygote without exec: they must still look
    like `python3 -I main.py` (main module, exit codes, tracebacks, atexit, flushing, fresh RNG)."""
    r = one_slot.run("import sys, atexit\natexit.register(lambda: print('bye'))\n"
                     "if __name__ == '__main__':\n    print('main', sys.argv[0], end='')\n")
    assert (r.returncode, r.stdout) == (0, "main /code/main.py" + "bye\n")
    assert one_slot.run("import sys\nsys.exit(3)").returncode == 3
    r = one_slot.run("def f():\n    raise ValueError('boom')\nf()")
    assert r.returncode == 1 and "Traceback" in r.stderr and "ValueError: boom" in r.stderr
    assert one_slot.run("import sys\nsys.exit('bad')").returncode == 1
    draws = {one_slot.run("import random\nprint(random.random())").stdout for _ in range(3)}
    assert len(draws) == 3  # not the zygote's generator state, copied into every run
    r = one_slot.run("import sys\nprint(sys.flags.isolated, sys.flags.no_user_site, "
                     "'site' in sys.modules, sys.path[0] != '/code')")
    assert r.stdout.split() == ["1", "1", "True", "True"]
    # another interpreter (here: the same binary with other flags) is exec'ed in the slot as it is
    other = Sandbox(limits=Limits(timeout_s=2.0), slots=1, uid_base=UID_BASE + 40,
                    interpreter=("/usr/bin/python3", "-I", "-S"))
    try:
        assert other.run("import sys\nprint('site' in sys.modules)").stdout == "False\n"
    finally:
        other.close()
