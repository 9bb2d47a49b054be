"""What the test suite needs from the machine beyond Python and npm, and a check that says at once
what is missing and how to get it (`make test` runs it first: `python -m tests.system`).

- Chromium (the browser tests and the PDF): Debian's `chromium`, or BOOK_CHROMIUM;
- a network namespace for the offline site build: `unshare --net` as root, or, without root,
  `unshare --user --map-root-user --net` (unprivileged user namespaces), and `ip` to bring up
  loopback inside it;
- bubblewrap (`bwrap`), the grader's sandbox;
- poppler-utils (`pdftotext`), to read the PDF back.

As root the tests install the missing Debian packages themselves (apt-get); without root they
must already be there.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile

from filelock import FileLock

from book.browser import INSTALL_HINT, chromium_path

PACKAGES = {"chromium": "chromium", "bwrap": "bubblewrap", "pdftotext": "poppler-utils"}
USERNS_HINT = ("enable unprivileged user namespaces (`sudo sysctl kernel.unprivileged_userns_clone=1`; on "
               "Ubuntu 24.04 also `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`), or run the "
               "tests as root")


def is_root() -> bool:
    """Whether the tests run as root (and so may install Debian packages)."""
    return os.geteuid() == 0


def unshare_net() -> list[str]:
    """The command prefix that runs a command in a new network namespace: root needs no user namespace."""
    return ["unshare", "--net"] if is_root() else ["unshare", "--user", "--map-root-user", "--net"]


def offline(command: list[str]) -> list[str]:
    """`command` wrapped to run in a new network namespace that has only loopback (up)."""
    inner = "ip link set lo up && exec " + shlex.join(command)
    return [*unshare_net(), "sh", "-c", inner]


def found(name: str) -> bool:
    """Whether `name` (chromium, bwrap, pdftotext) is on this machine."""
    return bool(chromium_path() if name == "chromium" else shutil.which(name))


def ensure_tool(name: str) -> None:
    """Make `name` available: as root, install its Debian package (once, whatever the number of test
    workers); without root, RuntimeError with what to install."""
    if found(name):
        return
    if not is_root():
        raise RuntimeError(missing_message(name))
    with FileLock(os.path.join(tempfile.gettempdir(), f"book-apt-{PACKAGES[name]}.lock")):
        if not found(name):
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "-q", PACKAGES[name]], check=True, env=env)


def missing_message(name: str) -> str:
    """What to do when `name` is missing and the tests cannot install it (not root)."""
    if name == "chromium":
        return f"Chromium is missing: {INSTALL_HINT}"
    return f"{name} is missing: install it with `sudo apt-get install {PACKAGES[name]}`"


def problems() -> list[str]:
    """Everything the suite needs that is missing and that it cannot install itself, with what to do."""
    missing = []
    if not is_root():
        missing += [missing_message(name) for name in PACKAGES if not found(name)]
    if shutil.which("ip") is None:
        missing.append("`ip` is missing (it brings up loopback in the offline build): "
                       "`sudo apt-get install iproute2`")
    probe = subprocess.run([*unshare_net(), "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        missing.append(f"`{shlex.join(unshare_net())}` fails ({probe.stderr.strip() or probe.returncode}): the "
                       f"site is built in a network namespace to prove it needs no network; {USERNS_HINT}")
    return missing


def main() -> int:
    """Print what is missing, if anything; exit 1 then."""
    missing = problems()
    if missing:
        print("make test needs, beyond Python and npm:\n" + "\n".join(f"  - {p}" for p in missing), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
