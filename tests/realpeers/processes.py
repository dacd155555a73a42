"""Process control for the real peers: binaries, ports, start, readiness, stop.

Every peer runs through :func:`_running_peer`: started in its own temporary
directory and process group, with stdout and stderr in a log file, polled
until a readiness probe answers, and stopped (SIGTERM to its process group,
then SIGKILL) when the block ends, when its start-up fails, and, as a last
resort, at interpreter exit (and by the kernel, should the test process die
hard). :class:`DicomPeer` and :class:`ArchivePeer` describe running peers.

A missing binary skips the test locally and fails it when the environment
says ``CI=true`` (:func:`require_binary`).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from .samples import SamplePatient

__all__ = [
    "LOOPBACK",
    "READY_TIMEOUT",
    "SPAWN_ENV",
    "STOP_GRACE",
    "ArchivePeer",
    "DicomPeer",
    "free_port",
    "require_binary",
]

#: Address every peer listens on (never anything but loopback).
LOOPBACK = "127.0.0.1"
#: Seconds a peer gets to answer after start before the fixture fails.
READY_TIMEOUT = 30.0
#: Seconds between SIGTERM and SIGKILL when stopping a peer.
STOP_GRACE = 5.0
#: Environment additions for every process started here. DCMTK 3.6.7 leaves
#: Nagle's algorithm on unless ``TCP_NODELAY=1``: with it, storescu of the
#: sample data into dcmqrscp takes ~0.03 s instead of ~0.9 s, a findscu run
#: ~0.03 s instead of ~0.12 s.
SPAWN_ENV = {"TCP_NODELAY": "1"}
_SBIN_DIRS = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])

# --------------------------------------------------------------------------
# binaries, ports and short-lived tools
# --------------------------------------------------------------------------


def _missing(reason: str) -> NoReturn:
    """Skip the test, or fail it when the environment has ``CI=true``."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing peer fails instead of skipping)")
    pytest.skip(reason)


def require_binary(name: str) -> str:
    """Return the full path of executable *name*, or end the current test.

    Looks in ``PATH`` and then in the sbin directories (Orthanc lives in
    ``/usr/sbin``). When it is missing the test is skipped with a reason, except
    when the environment has ``CI=true``: there a missing peer is a broken
    machine, so the test fails instead.
    """
    # pynetdicom installs its own findscu/echoscu/storescu into the venv;
    # in an activated venv they would shadow DCMTK's, so skip that folder
    venv_bin = os.path.realpath(os.path.join(sys.prefix, "bin"))
    path = os.pathsep.join(
        d for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and os.path.realpath(d) != venv_bin
    )
    found = shutil.which(name, path=path) or shutil.which(name, path=_SBIN_DIRS)
    if found:
        return found
    _missing(f"required binary {name!r} not found in PATH or {_SBIN_DIRS}")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _env() -> dict[str, str]:
    return {**os.environ, **SPAWN_ENV}


def _run_tool(argv: Sequence[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run a short-lived helper tool; raise with its output when it fails."""
    proc = subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
        env=_env(),
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, argv))} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc

# --------------------------------------------------------------------------
# one process runner for every peer
# --------------------------------------------------------------------------


_LIVE_GROUPS: set[int] = set()


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the child
    """Linux: have the kernel SIGKILL the peer if the test process dies hard."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _stop(proc: subprocess.Popen, grace: float = STOP_GRACE) -> None:
    """terminate -> wait *grace* s -> kill, for the peer and anything it forked."""
    pgid = proc.pid  # start_new_session=True: the peer leads its own group
    if proc.poll() is None:
        _kill_group(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _kill_group(pgid, signal.SIGKILL)
            proc.wait()
    # forked association handlers (wlmscpfs, dcmqrscp) may outlive the parent
    _kill_group(pgid, signal.SIGKILL)
    _LIVE_GROUPS.discard(pgid)


@atexit.register
def _kill_leftovers() -> None:
    """Last resort if a session ends without fixture teardown."""
    for pgid in list(_LIVE_GROUPS):
        _kill_group(pgid, signal.SIGKILL)
    _LIVE_GROUPS.clear()


def _log_tail(log_path: Path, limit: int = 6000) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {log_path}: {exc}>"
    return text if len(text) <= limit else "...\n" + text[-limit:]


@contextlib.contextmanager
def _running_peer(
    name: str,
    argv: Sequence[str],
    *,
    workdir: Path,
    is_ready: Callable[[], bool],
    timeout: float = READY_TIMEOUT,
    stop_grace: float = STOP_GRACE,
) -> Iterator[tuple[subprocess.Popen, Path]]:
    """Start *argv* in *workdir*, wait until *is_ready()*, yield, then stop it.

    Stopping is SIGTERM to the peer's process group, up to *stop_grace* s of
    waiting, then SIGKILL to the group.

    stdout and stderr go to ``<workdir>/<name>.log``. If the process exits or is
    not ready within *timeout* seconds, it is stopped and the test fails with
    the log's tail. The process is always stopped on leaving the block.
    """
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            list(argv),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(),
            start_new_session=True,
            # prctl must run in the child; it only calls libc, no locks taken
            preexec_fn=_set_parent_death_signal,  # noqa: PLW1509
        )
    _LIVE_GROUPS.add(proc.pid)
    try:
        started = time.monotonic()
        deadline = started + timeout
        delay = 0.02
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"{name} exited with {proc.returncode} before answering\n"
                    f"command: {' '.join(map(str, argv))}\nlog {log_path}:\n{_log_tail(log_path)}",
                    pytrace=False,
                )
            if is_ready():
                break
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{name} did not answer within {timeout:.0f} s\n"
                    f"command: {' '.join(map(str, argv))}\nlog {log_path}:\n{_log_tail(log_path)}",
                    pytrace=False,
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)
        yield proc, log_path
    finally:
        _stop(proc, stop_grace)


def _tcp_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def _http_ready(url: str, also_tcp_port: int | None = None) -> Callable[[], bool]:
    """Readiness probe: HTTP GET *url* answers 200 (and *also_tcp_port* accepts)."""

    def probe() -> bool:
        if also_tcp_port is not None and not _tcp_accepts(also_tcp_port):
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    return probe

# --------------------------------------------------------------------------
# running peers
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DicomPeer:
    """A running DICOM peer.

    Attributes:
        name: the program, e.g. ``"wlmscpfs"``.
        host: always ``"127.0.0.1"``.
        port: its DICOM port.
        aet: the called AE title to use (``-aec`` in findscu).
        workdir: its private temporary directory.
        log_path: its combined stdout/stderr (Orthanc: its log).
        pid: its process id (it leads its own process group).
    """

    name: str
    host: str
    port: int
    aet: str
    workdir: Path
    log_path: Path
    pid: int

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)``."""
        return self.host, self.port

    def log_text(self) -> str:
        """The peer's log so far (for assertion messages)."""
        return _log_tail(self.log_path, limit=1 << 30)


@dataclass(frozen=True)
class ArchivePeer(DicomPeer):
    """A query/retrieve peer holding the sample instances.

    Attributes:
        instances: the files stored into it (see :data:`SAMPLE_PATIENTS`).
        patients: :data:`SAMPLE_PATIENTS`, the description of what it holds.
    """

    instances: tuple[Path, ...]
    patients: tuple[SamplePatient, ...]


#: the move destinations the archive peers know (AE title -> a port on
#: 127.0.0.1): one for dimsekit move, one for DCMTK movescu, so both can
#: listen at once
MOVE_DESTINATION_AETS = ("DKMOVE", "DCMTKMOVE")


@pytest.fixture(scope="session")
def move_destinations() -> dict[str, int]:
    """The C-MOVE destinations dcmqrscp and Orthanc are configured with:
    AE title -> port on 127.0.0.1 (nothing listens there until a test
    does: ``dimsekit move +P PORT`` or ``movescu +P PORT``)."""
    ports: dict[str, int] = {}
    for aet in MOVE_DESTINATION_AETS:
        port = free_port()
        while port in ports.values():
            port = free_port()
        ports[aet] = port
    return ports
