"""One OS sandbox per submission: bubblewrap around `python -m book.runner`.

The sandbox has no network, its own PID namespace (the whole process tree dies with it), a
private writable /tmp of bounded size, read-only views of the Python environment and of the
`book` package, and nothing else of the machine: not the repository, `solutions/`, the other
submissions, the output folder or the grader's files. It runs under its own uid (when the grader
is root, whom the kernel exempts from RLIMIT_NPROC) with rlimits on processes, CPU seconds, file
size and memory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
INSIDE = "/opt/book"  # where the package appears in the sandbox
FIRST_UID = 2_000_000_000  # + the grading worker's pid: each live worker's sandboxes own a uid
INSTALL = ("bubblewrap (bwrap) is needed to grade untrusted notebooks: install it with "
           "`sudo apt-get install bubblewrap` (Debian/Ubuntu) or `sudo dnf install bubblewrap`, "
           "or pass --no-sandbox to grade notebooks you trust")


class SandboxUnavailable(ValueError):
    """bubblewrap is missing or cannot create namespaces here."""


@dataclass
class Limits:
    """What one sandboxed process tree may use."""

    memory: int = 4 * 2**30  # bytes of address space per process (RLIMIT_AS)
    cpu: int = 300  # CPU seconds per process (RLIMIT_CPU)
    file_size: int = 64 * 2**20  # bytes per written file (RLIMIT_FSIZE)
    processes: int = 64  # processes and threads of the sandbox's uid (RLIMIT_NPROC)
    tmp: int = 64 * 2**20  # bytes of the private /tmp


def check_available() -> None:
    """Raise SandboxUnavailable with a one-line reason unless bwrap works here."""
    if shutil.which("bwrap") is None:
        raise SandboxUnavailable(INSTALL)
    probe = subprocess.run([*_bwrap_head(os.geteuid() == 0), "--ro-bind", "/", "/", "true"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["no reason given"])[-1]
        raise SandboxUnavailable(f"bubblewrap cannot create a sandbox here ({reason})")


def _bwrap_head(root: bool) -> list[str]:
    """bwrap and its namespaces: as root, privileged mode (no user namespace, so that the uid
    can change); otherwise an unprivileged user namespace."""
    spaces = (["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
               "--unshare-cgroup-try"] if root else ["--unshare-all"])
    return ["bwrap", *spaces, "--die-with-parent", "--new-session"]


def _read_only_paths() -> list[str]:
    """The Python installation(s) the runner needs, outermost first, without duplicates."""
    paths = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    paths |= {sys.prefix, os.path.dirname(os.path.dirname(os.path.realpath(sys.executable)))}
    chosen: list[str] = []
    for path in sorted(paths, key=len):
        if path != "/" and not any(path.startswith(p.rstrip("/") + "/") or path == p
                                   for p in [*chosen, "/usr"]):
            chosen.append(path)
    return chosen


def _mounts(limits: Limits) -> list[str]:
    """bwrap's file system: /usr (and its /lib, /bin links), Python, the package, /tmp."""
    # the private /tmp first: mounted last, it would hide a Python environment that lives under /tmp
    args = ["--perms", "1777", "--size", str(limits.tmp), "--tmpfs", "/tmp"]
    mounts = _read_only_paths()
    parents = sorted({str(p) for m in [*mounts, f"{INSIDE}/book"] for p in Path(m).parents
                      if str(p) != "/"}, key=len)
    for parent in parents:
        args += ["--perms", "0755", "--dir", parent]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        link = Path("/", name)
        if link.is_symlink():
            args += ["--symlink", os.readlink(link), str(link)]
        elif link.is_dir():
            args += ["--ro-bind", str(link), str(link)]
    for path in mounts:
        args += ["--ro-bind", path, path]
    args += ["--ro-bind", str(PACKAGE), f"{INSIDE}/book", "--proc", "/proc", "--dev", "/dev",
             "--remount-ro", "/"]
    return args


def _environment() -> list[str]:
    env = {"HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONPATH": INSIDE, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONNOUSERSITE": "1", "MPLBACKEND": "Agg", "MPLCONFIGDIR": "/tmp/matplotlib",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "BOOK_PROGRESS": "0", "LANG": "C.UTF-8"}
    return ["--clearenv", *[a for k, v in env.items() for a in ("--setenv", k, v)]]


def _prlimit(limits: Limits) -> list[str]:
    return ["prlimit", f"--as={limits.memory}", f"--cpu={limits.cpu}",
            f"--fsize={limits.file_size}", f"--nproc={limits.processes}", "--core=0", "--"]


def command(limits: Limits, info_fd: int) -> list[str]:
    """The command line of one sandboxed runner."""
    root = os.geteuid() == 0
    args = [*_bwrap_head(root), "--as-pid-1", "--info-fd", str(info_fd), *_mounts(limits),
            *_environment(), "--chdir", "/tmp"]
    if root:  # drop to a uid of our own: the kernel enforces RLIMIT_NPROC on it, not on root
        uid = str(FIRST_UID + os.getpid())  # one sandbox at a time per worker: its own count
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    return [*args, *_prlimit(limits), sys.executable, "-m", "book.runner"]


class Process:
    """A started runner: its pipes, and how to interrupt or stop it."""

    def __init__(self, limits: Limits, sandboxed: bool = True) -> None:
        if sandboxed:
            info_read, info_write = os.pipe()
            argv, fds = command(limits, info_write), [info_write]
        else:
            argv, fds = [*_prlimit(limits), sys.executable, "-m", "book.runner"], []
        env = None if sandboxed else {**os.environ, "PYTHONPATH": str(PACKAGE.parent),
                                      "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
        self.popen = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, pass_fds=fds, env=env,
                                      cwd="/tmp" if not sandboxed else None)
        self.pid = self.popen.pid
        if sandboxed:
            os.close(info_write)
            self.pid = _child_pid(info_read) or self.pid
        self.fd_in, self.fd_out = self.popen.stdin.fileno(), self.popen.stdout.fileno()

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def interrupt(self) -> None:
        """SIGINT to the runner: the student's code raises KeyboardInterrupt."""
        if self.alive:
            try:
                os.kill(self.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """End the runner (its channel closes: it exits, and its whole namespace with it)."""
        close_pipes(self.popen)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Kill the runner; bwrap then reaps it and exits, taking the namespace along."""
        _kill(self.pid)
        try:
            self.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            _kill(self.popen.pid)
            self.popen.wait()
        close_pipes(self.popen)


def close_pipes(popen: subprocess.Popen) -> None:
    """Close a child's stdin and stdout (closing the channel asks a runner or worker to exit)."""
    for stream in (popen.stdin, popen.stdout):
        try:
            stream.close()
        except OSError:
            pass


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _child_pid(fd: int) -> int | None:
    """The runner's pid outside its namespace, from bwrap's --info-fd."""
    with os.fdopen(fd, "rb") as info:
        data = info.read()
    try:
        return int(json.loads(data)["child-pid"])
    except (ValueError, KeyError, TypeError):
        return None
