"""Benchmark ``dimsekit find`` against DCMTK ``findscu`` and pynetdicom ``findscu``.

One run sets up its own peers on loopback (Orthanc and DCMTK ``wlmscpfs``),
then measures the three tools side by side -- alternating runs, medians --
and prints a table with ratios and the targets of the performance issue:

1. a 5,000-match STUDY query (6 return keys) against Orthanc holding 5,000
   studies, Orthanc run as users run it (without TCP_NODELAY): wall and CPU,
   output to /dev/null, for ``--format dump`` and ``--format ndjson`` (a
   format ``dimsekit find --help`` does not list is skipped with a note);
2. 2,000 one-match queries on one association (``--repeat 2000``), against
   wlmscpfs and Orthanc, both with TCP_NODELAY=1: time per query, as (run
   with --repeat 2000 - run with --repeat 1) / 1999;
3. start-up: ``dimsekit --help`` and ``dimsekit find --help`` against
   ``python -c pass`` and DCMTK ``findscu --help`` (and whether the top-level
   help imported pynetdicom or pydicom);
4. peak RSS of a 2,000-response and a 20,000-response worklist query
   against ``wlmscpfs`` serving a generated database, and the responses per
   second of the 20,000-response stream;
5. ``--batch``: 10,000 one-match worklist queries on one association
   (wlmscpfs with 10 items, the queries cycling over their PatientIDs)
   against findscu with 10,000 query files; and ``--batch --parallel 4``
   against Orthanc (400 STUDY queries by PatientID) against findscu's same
   queries, sequential, on one association;
6. ``--drill-down SERIES --parallel 4`` of 200 studies against Orthanc,
   against a findscu shell loop (one process per study) and a pynetdicom
   ``send_c_find`` loop on one association (bench/pynetdicom_drilldown.py);
7. (only with ``--cases 7``) peak RSS of ``--batch`` with 1,000 and
   100,000 rows.

Cases 5-7 need ``dimsekit find --batch/--parallel/--drill-down``; when
``dimsekit find --help`` does not list one, dimsekit's side of the case is
skipped with a note (the reference tools still run).  In cases 1, 5 and 6
Orthanc runs as users run it, without TCP_NODELAY (``--peers-nodelay``:
with it); in case 2 it runs with TCP_NODELAY=1.

Usage (with the project's virtualenv, which has pydicom; nothing else is
imported from outside the standard library)::

    .venv/bin/python bench/bench_find.py            # full run, ~25 minutes
    .venv/bin/python bench/bench_find.py --quick    # fewer, lighter runs
    .venv/bin/python bench/bench_find.py --cases 2,3 --runs 7
    .venv/bin/python bench/bench_find.py --cases 7 --runs 1   # memory, 100,000 rows
    .venv/bin/python bench/bench_find.py --profile prof/   # + cProfile of cases 1, 2

Needs DCMTK (``findscu``, ``wlmscpfs``) and Orthanc (``Orthanc``):
``apt-get install -y dcmtk orthanc``.  Wall time, CPU time (user + system)
and peak RSS of each tool run come from ``os.wait4`` on that one child
process (the kernel's own accounting, the same numbers ``/usr/bin/time -v``
prints), so GNU ``time`` is not needed.

The generated data is cached (``--cache``, default
``~/.cache/dimsekit-bench``): Orthanc's storage and index with the studies,
and the worklist database.  Reruns reuse them; ``--regenerate`` starts
over.  Results go to a JSON file (``--json``, default
``<cache>/results/<timestamp>.json``).

Exit status: 0 when every measured target passes, 1 when one fails, 2 when
the benchmark itself could not run (a missing tool, a peer that did not
start, a tool run that failed).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import io
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"
#: bump when the generated data changes: the cache is rebuilt
DATA_VERSION = 1
#: DCMTK 3.6.7 (and Orthanc, which is built on it) leave Nagle's algorithm on
#: unless their environment has TCP_NODELAY=1; every tool and wlmscpfs get it,
#: Orthanc only in case 2 (elsewhere it runs as users run it: user_env)
BENCH_ENV = {"TCP_NODELAY": "1"}
UID_ROOT = "2.25."
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
STUDY_KEYS = ("PatientName", "PatientID", "StudyDate", "StudyDescription",
              "AccessionNumber", "StudyInstanceUID")
WORKLIST_KEYS = ("PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID",
                 "ScheduledProcedureStepSequence[0].Modality",
                 "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate")
MIB = 1024 * 1024


def note(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark cannot go on (exit 2)."""


# --------------------------------------------------------------------------
# running one tool and measuring it
# --------------------------------------------------------------------------


@dataclass
class Sample:
    wall: float  # s
    cpu: float  # s, user + system
    user: float
    system: float
    maxrss: float | None  # MiB
    rc: int


def bench_env() -> dict[str, str]:
    return {**os.environ, **BENCH_ENV}


def user_env() -> dict[str, str]:
    """A peer's environment as users run it: without TCP_NODELAY (Orthanc in
    cases 1, 5 and 6)."""
    return {k: v for k, v in os.environ.items() if k != "TCP_NODELAY"}


#: GNU time, for peak RSS (see measure); found in main()
GNU_TIME: str | None = None
#: without GNU time: a minimal Python launcher does its job (its own ~8 MiB
#: then floor the figures)
LAUNCHER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    try:\n"
    "        os.execvp(sys.argv[2], sys.argv[2:])\n"
    "    finally:\n"
    "        os._exit(127)\n"
    "_, st, ru = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(ru.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(st))\n"
)


def measure(argv: Sequence[str], *, rss: bool = True, stdout: Path | None = None) -> Sample:
    """Run ``argv`` once, stdout (unless ``stdout`` names a file) and stderr to
    /dev/null.

    Wall clock is taken around the run; CPU (user + system) and peak RSS
    come from ``os.wait4``.  Linux keeps a process's RSS high-water mark
    across exec, so a child spawned straight from this (big) Python would
    report at least our own RSS: with ``rss`` the child is started through
    GNU ``time``, a small C program whose fork has almost nothing mapped,
    and its ``%M`` is the child's own peak.  (wait4 on ``time`` still gives
    the CPU of time + child; time itself costs ~1 ms.)
    """
    with tempfile.NamedTemporaryFile("r", prefix="bench-rss-", delete=True) as rss_file:
        wrap: list[str] = []
        if rss:
            wrap = ([GNU_TIME, "-f", "%M", "-o", rss_file.name, "--"] if GNU_TIME else
                    [sys.executable, "-I", "-S", "-c", LAUNCHER, rss_file.name])
        out = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
        try:
            t0 = time.perf_counter()
            proc = subprocess.Popen([*wrap, *argv], stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.DEVNULL, env=bench_env())
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
        finally:
            if stdout:
                out.close()
        proc.returncode = os.waitstatus_to_exitcode(status)
        maxrss = ru.ru_maxrss / 1024  # KiB -> MiB; floored at our own RSS (see above)
        if wrap:
            text = rss_file.read().strip().splitlines()
            with contextlib.suppress(ValueError, IndexError):
                maxrss = int(text[-1]) / 1024
    return Sample(wall=wall, cpu=ru.ru_utime + ru.ru_stime, user=ru.ru_utime,
                  system=ru.ru_stime, maxrss=maxrss if rss else None, rc=proc.returncode)


def capture(argv: Sequence[str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, env=bench_env(), check=False)


def check_run(name: str, argv: Sequence[str], sample: Sample) -> None:
    if sample.rc != 0:
        proc = capture(argv)
        tail = (proc.stderr or b"").decode("utf-8", "replace")[-2000:]
        raise BenchError(f"{name} exited {sample.rc}: {shlex.join(argv)}\n{tail}")


# --------------------------------------------------------------------------
# finding the tools
# --------------------------------------------------------------------------


def _which_outside_venv(name: str) -> str | None:
    """``name`` on PATH or in sbin, skipping this interpreter's bin folder
    (pynetdicom installs a ``findscu`` there that is not DCMTK's)."""
    venv_bin = os.path.realpath(os.path.dirname(sys.executable))
    path = os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and os.path.realpath(d) != venv_bin)
    return (shutil.which(name, path=path)
            or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin"))


@dataclass
class Tools:
    dimsekit: list[str]
    dimsekit_python: str
    dcmtk_findscu: str
    pynetdicom_findscu: list[str]
    python: str
    orthanc: str | None
    wlmscpfs: str | None
    dimsekit_formats: list[str] = field(default_factory=list)
    #: every --long option `dimsekit find --help` lists (cases 5-7 need
    #: --batch, --parallel, --drill-down)
    dimsekit_options: set[str] = field(default_factory=set)

    @classmethod
    def find(cls, args: argparse.Namespace) -> Tools:
        here = Path(sys.executable).parent
        dimsekit = args.dimsekit or str(here / "dimsekit")
        if not os.path.exists(dimsekit):
            dimsekit = shutil.which("dimsekit") or ""
        if not dimsekit:
            raise BenchError("dimsekit not found: give --dimsekit PATH")
        # the interpreter in the console script's #! line (for -X importtime, cProfile)
        with open(dimsekit, "rb") as fh:
            first = fh.readline().decode("utf-8", "replace").strip()
        dk_python = first[2:].strip() if first.startswith("#!") else sys.executable
        findscu = args.dcmtk_findscu or _which_outside_venv("findscu")
        if not findscu:
            raise BenchError("DCMTK findscu not found (apt-get install -y dcmtk)")
        pyn = shlex.split(args.pynetdicom_findscu) if args.pynetdicom_findscu else \
            [sys.executable, "-m", "pynetdicom", "findscu"]
        tools = cls(
            dimsekit=[dimsekit], dimsekit_python=dk_python, dcmtk_findscu=findscu,
            pynetdicom_findscu=pyn, python=sys.executable,
            orthanc=args.orthanc or _which_outside_venv("Orthanc"),
            wlmscpfs=args.wlmscpfs or _which_outside_venv("wlmscpfs"),
        )
        help_text = capture([*tools.dimsekit, "find", "--help"], timeout=60
                            ).stdout.decode("utf-8", "replace")
        tools.dimsekit_formats = tools._find_formats(help_text)
        tools.dimsekit_options = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", help_text))
        return tools

    def missing_options(self, *options: str) -> list[str]:
        """Those of ``options`` that ``dimsekit find --help`` does not list."""
        return [o for o in options if o not in self.dimsekit_options]

    @staticmethod
    def _find_formats(text: str) -> list[str]:
        """The --format choices ``dimsekit find --help`` lists."""
        flat = " ".join(text.split())
        # click shows the option's choices as --format [dump|json|...]; other
        # options' help may name --format too
        m = re.search(r"--format \[([^\]]+)\]", flat)
        if m is None:
            return ["dump"]
        return [c.strip() for c in m.group(1).split("|") if c.strip()]


def versions(tools: Tools) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, argv in (("dcmtk", [tools.dcmtk_findscu, "--version"]),
                       ("orthanc", [tools.orthanc or "Orthanc", "--version"])):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            proc = capture(argv, timeout=30)
            lines = (proc.stdout + proc.stderr).decode("utf-8", "replace").splitlines()
            out[name] = next((ln.strip() for ln in lines if ln.strip()), "?")
    code = ("import importlib.metadata as m\n"
            "for d in ('dimsekit','pynetdicom','pydicom','click','pluggy'):\n"
            "    try: print(d, m.version(d))\n"
            "    except Exception: print(d, '?')\n")
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        proc = capture([tools.dimsekit_python, "-c", code], timeout=30)
        for line in proc.stdout.decode().splitlines():
            name, _, ver = line.partition(" ")
            out[name] = ver
    out["python"] = capture([tools.dimsekit_python, "-c",
                             "import sys; print(sys.version.split()[0])"]
                            ).stdout.decode().strip()
    return out


def source_commit() -> str | None:
    """The commit of the checkout this script is in (+ "-dirty" when src/ has
    changes): an editable install runs whatever src/ holds at each run."""
    repo = Path(__file__).resolve().parent.parent
    git = shutil.which("git")
    if not git or not (repo / ".git").exists():
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run([git, "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run([git, "-C", str(repo), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, timeout=10, check=False)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    return None


def machine() -> dict[str, object]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
    return {"cpu": cpu, "cpus": os.cpu_count(), "memory": mem,
            "kernel": platform.release(), "platform": platform.platform()}


#: environment variables that change how fast a Python tool runs: with
#: PYTHONUNBUFFERED sys.stdout.buffer makes one write() per write call; with
#: PYTHONDONTWRITEBYTECODE an editable install recompiles its modules each run
PYTHON_ENV = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX",
              "PYTHONOPTIMIZE", "PYTHONDEVMODE", "PYTHONMALLOC", "PYTHONPROFILEIMPORTTIME")


#: run by dimsekit's interpreter: byte-compile the packages of dimsekit and
#: of every plugin of its entry-point group, as `pip install` does for an
#: installed package; prints how many modules were compiled
_COMPILE = """
import compileall, importlib.metadata, importlib.util, os, sys
roots = {"dimsekit"} | {ep.value.split(":")[0].split(".")[0]
                        for ep in importlib.metadata.entry_points(group="dimsekit")}
done = 0
for root in sorted(roots):
    spec = importlib.util.find_spec(root)
    for where in (spec.submodule_search_locations or []) if spec else []:
        done += sum(1 for dirpath, _, names in os.walk(where) for n in names
                    if n.endswith(".py"))
        compileall.compile_dir(where, quiet=2)
print(done)
"""


def byte_compile(tools: Tools) -> str:
    """dimsekit's modules as a wheel install leaves them: byte-compiled.

    Under PYTHONDONTWRITEBYTECODE (set in some environments) an editable
    install would compile them from source on every run, ~30 ms that a
    user's `pip install` does not pay."""
    done = subprocess.run([tools.dimsekit_python, "-c", _COMPILE], capture_output=True,
                          check=False, text=True, timeout=120)
    if done.returncode:
        raise BenchError(f"byte-compiling dimsekit failed: {done.stderr.strip()[-300:]}")
    return f"{done.stdout.strip()} modules of dimsekit and its plugins byte-compiled"


# --------------------------------------------------------------------------
# peers
# --------------------------------------------------------------------------

_LIVE: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    # wlmscpfs forks one child per association: end the whole group
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


@contextlib.contextmanager
def running(name: str, argv: Sequence[str], workdir: Path,
            ready: Callable[[], bool], timeout: float = 60,
            env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(list(argv), cwd=workdir, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT,
                                env=env if env is not None else bench_env(),
                                start_new_session=True)
    _LIVE.append(proc)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if proc.poll() is not None:
                raise BenchError(f"{name} exited {proc.returncode} at start; log "
                                 f"{log_path}:\n{log_path.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} not ready within {timeout:.0f} s; log {log_path}")
            time.sleep(0.1)
        yield proc
    finally:
        _stop(proc)
        _LIVE.remove(proc)


def _tcp_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def http_json(url: str, data: bytes | None = None, timeout: float = 60):
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET",
                                 headers={"Content-Type": "application/dicom"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as rsp:
        return json.load(rsp)


def study_uid(i: int) -> str:
    digest = hashlib.sha256(f"dimsekit-bench-study-{i}".encode()).digest()
    return UID_ROOT + str(int.from_bytes(digest[:16], "big"))


def _uid(kind: str, i: int) -> str:
    digest = hashlib.sha256(f"dimsekit-bench-{kind}-{i}".encode()).digest()
    return UID_ROOT + str(int.from_bytes(digest[:16], "big"))


def study_instance(i: int) -> bytes:
    """A minimal Secondary Capture instance: one study, one series, no pixels."""
    return _instance(i, sop_uid=_uid("instance", i), study=study_uid(i),
                     series=_uid("series", i), series_number=1,
                     patient_name=f"BENCH^PATIENT{i:05d}", patient_id=f"BP{i:05d}")


#: case 6's Orthanc: 200 studies (one patient each) of 2-3 series, one
#: instance per series
DRILL_STUDIES = 200


def drill_series_count(i: int) -> int:
    """Series in drill-down study ``i``: 2 or 3 (alternating)."""
    return 2 + i % 2


def drill_patient_id(i: int) -> str:
    return f"DP{i:06d}"  # 8 characters: query files are made by substitution


def drill_study_uid(i: int) -> str:
    return _uid("drill-study", i)


def drill_instances(i: int) -> list[bytes]:
    """Study ``i`` of case 6's Orthanc: one instance per series."""
    return [_instance(i, sop_uid=_uid(f"drill-instance-{j}", i), study=drill_study_uid(i),
                      series=_uid(f"drill-series-{j}", i), series_number=j + 1,
                      patient_name=f"DRILL^PATIENT{i:05d}", patient_id=drill_patient_id(i),
                      series_description=f"Series {j + 1}")
            for j in range(drill_series_count(i))]


def _instance(i: int, *, sop_uid: str, study: str, series: str, series_number: int,
              patient_name: str, patient_id: str,
              series_description: str | None = None) -> bytes:
    from pydicom import Dataset, dcmwrite
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = sop_uid
    day = datetime.date(2000, 1, 1) + datetime.timedelta(days=i % 9000)
    ds.StudyDate = day.strftime("%Y%m%d")
    ds.StudyTime = f"{(i // 60) % 24:02d}{i % 60:02d}00"
    ds.AccessionNumber = f"ACC{i:07d}"
    ds.Modality = "OT"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = f"Benchmark study {i}"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = str(i % 100000)
    ds.SeriesNumber = series_number
    if series_description:
        ds.SeriesDescription = series_description
    ds.InstanceNumber = 1
    ds.ConversionType = "WSD"
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def orthanc_config(base: Path, dicom_port: int, http_port: int) -> dict:
    return {
        "Name": "dimsekit-bench",
        "StorageDirectory": str(base / "storage"),
        "IndexDirectory": str(base / "index"),
        "StorageCompression": False,
        "SyncStorageArea": False,
        "Plugins": [],
        "LuaScripts": [],
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "SslEnabled": False,
        "OrthancExplorerEnabled": False,
        "WebDavEnabled": False,
        "MetricsEnabled": False,
        "HttpThreadsCount": 8,
        "DicomServerEnabled": True,
        "DicomAet": "ORTHANC",
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowStore": True,
        "DicomModalities": {},
        "DicomThreadsCount": 4,
        "LimitFindResults": 0,
        "LimitFindInstances": 0,
        "ConcurrentJobs": 1,
        "SaveJobs": False,
        "JobsHistorySize": 1,
        "StableAge": 1,
        "OverwriteInstances": False,
    }


@dataclass
class OrthancPeer:
    port: int
    http_port: int
    aet: str = "ORTHANC"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.http_port}"


@contextlib.contextmanager
def orthanc_peer(tools: Tools, cache: Path, studies: int, info: dict, *,
                 drill: bool = False, nodelay: bool = True) -> Iterator[OrthancPeer]:
    """Orthanc on loopback with ``studies`` generated studies.

    ``drill``: case 6's storage (2-3 series a study, one patient a study)
    instead of case 1's (one series a study).  ``nodelay``: TCP_NODELAY=1 in
    Orthanc's environment (without it, as users run Orthanc, Nagle's
    algorithm stays on)."""
    if not tools.orthanc:
        raise BenchError("Orthanc not found (apt-get install -y orthanc)")
    # case 1 expects exactly `studies` matches
    base = cache / (f"orthanc-drill-{studies}" if drill else f"orthanc-{studies}")
    base.mkdir(parents=True, exist_ok=True)
    dicom_port, http_port = free_port(), free_port()
    while http_port == dicom_port:
        http_port = free_port()
    config = base / "orthanc.json"
    config.write_text(json.dumps(orthanc_config(base, dicom_port, http_port), indent=2))
    peer = OrthancPeer(dicom_port, http_port)

    def ready() -> bool:
        if not _tcp_accepts(dicom_port):
            return False
        try:
            http_json(peer.url + "/system", timeout=2)
            return True
        except (urllib.error.URLError, OSError, ValueError):
            return False

    env = bench_env() if nodelay else user_env()
    with running("orthanc", [tools.orthanc, str(config)], base, ready, env=env):
        system = http_json(peer.url + "/system")
        info["orthanc_version"] = system.get("Version")
        if drill:
            fill_orthanc(peer, base, studies, info, key="orthanc_drill_generation",
                         make=drill_instances,
                         series=sum(drill_series_count(i) for i in range(studies)))
        else:
            fill_orthanc(peer, base, studies, info)
        yield peer


def fill_orthanc(peer: OrthancPeer, base: Path, studies: int, info: dict, *,
                 key: str = "orthanc_generation",
                 make: Callable[[int], bytes | list[bytes]] = study_instance,
                 series: int | None = None) -> None:
    """Store ``studies`` generated studies unless the cached storage has them.

    ``make(i)``: the instance(s) of study i; ``series``: how many series the
    storage must hold (default: one a study)."""
    series = studies if series is None else series
    stamp = base / "generated.json"

    def counts() -> tuple[int, int]:
        stats = http_json(peer.url + "/statistics")
        return int(stats.get("CountStudies", 0)), int(stats.get("CountSeries", 0))

    have, have_series = counts()
    meta = {}
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(stamp.read_text())
    if have >= studies and have_series >= series and meta.get("version") == DATA_VERSION:
        note(f"orthanc: reusing {have} cached studies ({have_series} series) in {base} "
             f"(generated in {meta.get('seconds', '?')} s on {meta.get('date', '?')})")
        info[key] = {**meta, "reused": True, "studies": have}
        return
    note(f"orthanc: generating {studies} studies ({series} series) in {base} "
         f"(pydicom, POST /instances, 8 threads) ...")
    t0 = time.perf_counter()
    failures: list[str] = []

    def post(i: int) -> None:
        made = make(i)
        for data in [made] if isinstance(made, bytes) else made:
            try:
                status = http_json(peer.url + "/instances", data=data).get("Status")
                if status not in ("Success", "AlreadyStored"):
                    failures.append(f"study {i}: {status}")
            except (urllib.error.URLError, OSError, ValueError) as exc:
                failures.append(f"study {i}: {exc}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(post, range(studies)))
    seconds = round(time.perf_counter() - t0, 1)
    if failures:
        raise BenchError(f"orthanc refused {len(failures)} instances, e.g. {failures[0]}")
    have, have_series = counts()
    if have < studies or have_series < series:
        raise BenchError(f"orthanc holds {have} studies / {have_series} series after "
                         f"upload, wanted {studies} / {series}")
    meta = {"version": DATA_VERSION, "studies": studies, "series": series,
            "seconds": seconds, "rate_per_s": round(studies / max(seconds, 1e-9)),
            "date": datetime.datetime.now().isoformat(timespec="seconds")}
    stamp.write_text(json.dumps(meta))
    note(f"orthanc: stored {studies} studies ({series} series) in {seconds} s "
         f"({meta['rate_per_s']} studies/s)")
    info[key] = {**meta, "reused": False}


def worklist_item(i: int):
    from pydicom import Dataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.276.0.7230010.3.1.0.1"  # DCMTK's worklist file class
    meta.MediaStorageSOPInstanceUID = _uid("worklist", i)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.AccessionNumber = f"WACC{i:06d}"
    ds.PatientName = f"WORKLIST^PATIENT{i:05d}"
    ds.PatientID = f"WP{i:06d}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = _uid("wl-study", i)
    ds.RequestingPhysician = "REQUESTING^DOCTOR"
    ds.RequestedProcedureDescription = f"Procedure {i % 50}"
    ds.RequestedProcedureID = f"RP{i:06d}"
    ds.RequestedProcedurePriority = "LOW"
    sps = Dataset()
    sps.Modality = ("CT", "MR", "US", "CR")[i % 4]
    sps.ScheduledStationAETitle = "STATION1"
    day = datetime.date(2024, 1, 1) + datetime.timedelta(days=i % 365)
    sps.ScheduledProcedureStepStartDate = day.strftime("%Y%m%d")
    sps.ScheduledProcedureStepStartTime = f"{8 + i % 10:02d}{i % 60:02d}00"
    sps.ScheduledPerformingPhysicianName = "PERFORMING^DOCTOR"
    sps.ScheduledProcedureStepDescription = f"Step {i % 20}"
    sps.ScheduledProcedureStepID = f"SPS{i:06d}"
    sps.ScheduledStationName = "STN1"
    sps.ScheduledProcedureStepLocation = "ROOM1"
    ds.ScheduledProcedureStepSequence = [sps]
    return ds


def fill_worklists(cache: Path, sizes: Sequence[int], info: dict) -> Path:
    """``<cache>/worklist/db/WL<n>/*.wl`` (+ ``lockfile``) for each size n.

    The files are written once into ``<cache>/worklist/files``; each folder
    holds hard links to the first n of them.  Only what is missing is made.
    """
    base = cache / "worklist"
    db = base / "db"
    pool = base / "files"
    stamp = base / "generated.json"
    meta: dict = {}
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(stamp.read_text())
    if meta.get("version") != DATA_VERSION:
        shutil.rmtree(base, ignore_errors=True)
        meta = {}
    pool.mkdir(parents=True, exist_ok=True)

    def complete(n: int) -> bool:
        folder = db / f"WL{n}"
        return (folder / "lockfile").exists() and len(list(folder.glob("*.wl"))) == n

    if all(complete(n) for n in sizes):
        note(f"worklist: reusing the cached database in {db} "
             f"(generated in {meta.get('seconds', '?')} s)")
        info["worklist_generation"] = {**meta, "reused": True}
        return db
    from pydicom import dcmwrite

    biggest = max(sizes)
    missing = [i for i in range(biggest) if not (pool / f"item{i:06d}.wl").exists()]
    note(f"worklist: generating {len(missing)} worklist files with pydicom ...")
    t0 = time.perf_counter()
    for i in missing:
        tmp = pool / f"item{i:06d}.tmp"
        dcmwrite(tmp, worklist_item(i), enforce_file_format=True)
        tmp.rename(pool / f"item{i:06d}.wl")
    for n in sizes:
        if complete(n):
            continue
        folder = db / f"WL{n}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i in range(n):
            os.link(pool / f"item{i:06d}.wl", folder / f"item{i:06d}.wl")
        (folder / "lockfile").touch()
    seconds = round(time.perf_counter() - t0, 1)
    if missing or "seconds" not in meta:
        meta = {"version": DATA_VERSION, "files": biggest, "generated": len(missing),
                "seconds": seconds, "rate_per_s": round(len(missing) / max(seconds, 1e-9)),
                "date": datetime.datetime.now().isoformat(timespec="seconds")}
    stamp.write_text(json.dumps(meta))
    note(f"worklist: generated in {seconds} s")
    info["worklist_generation"] = {**meta, "reused": not missing}
    return db


@contextlib.contextmanager
def wlmscpfs_peer(tools: Tools, db: Path, aet: str) -> Iterator[int]:
    if not tools.wlmscpfs:
        raise BenchError("wlmscpfs not found (apt-get install -y dcmtk)")
    port = free_port()
    workdir = db.parent
    echoscu = _which_outside_venv("echoscu")

    def ready() -> bool:
        if echoscu:  # no bare TCP probe: wlmscpfs would log an error for it
            # wlmscpfs refuses a called AE title it has no folder for
            return capture([echoscu, "-to", "5", "-ta", "5", "-aec", aet, LOOPBACK, str(port)],
                           timeout=15).returncode == 0
        return _tcp_accepts(port)

    with running("wlmscpfs", [tools.wlmscpfs, "-dfp", str(db), str(port)], workdir, ready):
        yield port


# --------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------

DIMSEKIT, DCMTK, PYNETDICOM, PYTHON = "dimsekit", "dcmtk-findscu", "pynetdicom-findscu", "python"


@dataclass
class Result:
    case: str
    tool: str
    what: str  # what was run, in words
    argv: list[str]
    samples: list[dict] = field(default_factory=list)
    median_wall: float | None = None
    median_cpu: float | None = None
    median_maxrss: float | None = None
    extra: dict = field(default_factory=dict)

    def summarise(self) -> None:
        if self.samples:
            self.median_wall = statistics.median(s["wall"] for s in self.samples)
            self.median_cpu = statistics.median(s["cpu"] for s in self.samples)
            rss = [s["maxrss"] for s in self.samples if s["maxrss"] is not None]
            self.median_maxrss = statistics.median(rss) if rss else None


@dataclass
class Row:
    """One line of the printed table."""

    case: str
    tool: str
    wall: float | None
    cpu: float | None
    rss: float | None
    unit: str = "s"
    vs_dcmtk: float | None = None
    vs_pynetdicom: float | None = None
    target: str = ""
    verdict: str = ""  # PASS / FAIL / ""
    note: str = ""


def alternate(name: str, runs: int, commands: dict[str, list[str]],
              results: dict[str, Result], warmup: bool = True, rss: bool = True,
              no_rss: frozenset[str] | set[str] = frozenset()) -> None:
    """Run every command ``runs`` times, rotating the order each round.

    ``no_rss``: tools run without the RSS wrapper (e.g. a shell loop)."""
    tools = list(commands)
    if warmup:
        for tool in tools:
            s = measure(commands[tool], rss=rss and tool not in no_rss)
            check_run(f"{name}/{tool}", commands[tool], s)
    for r in range(runs):
        order = tools[r % len(tools):] + tools[:r % len(tools)]
        for tool in order:
            s = measure(commands[tool], rss=rss and tool not in no_rss)
            check_run(f"{name}/{tool}", commands[tool], s)
            results[tool].samples.append(asdict(s))
        walls = "  ".join(f"{t}={results[t].samples[-1]['wall']:.3f}s" for t in tools)
        note(f"  {name} round {r + 1}/{runs}: {walls}")
    for res in results.values():
        res.summarise()


def count_responses(argv: list[str], marker: bytes, timeout: float = 300) -> int:
    proc = capture(argv, timeout=timeout)
    if proc.returncode != 0:
        raise BenchError(f"{shlex.join(argv)} exited {proc.returncode}:\n"
                         f"{proc.stderr.decode('utf-8', 'replace')[-2000:]}")
    return (proc.stdout + proc.stderr).count(marker)


def study_query_args(style: str) -> list[str]:
    """``-S`` + QueryRetrieveLevel=STUDY + the 6 return keys in a tool's syntax."""
    out = ["-S", "-k", "QueryRetrieveLevel=STUDY"]
    for key in STUDY_KEYS:
        out += ["-k", key if style == "dcmtk" else f"{key}="]
    return out


def orthanc_env_note(nodelay: bool) -> str:
    return "TCP_NODELAY=1" if nodelay else "without TCP_NODELAY, as users run it"


def case1(tools: Tools, peer: OrthancPeer, runs: int, studies: int, nodelay: bool,
          out: list[Result], rows: list[Row]) -> None:
    env_note = orthanc_env_note(nodelay)
    note(f"case 1: {studies}-match STUDY query against Orthanc ({env_note}), output to "
         f"/dev/null")
    host = [LOOPBACK, str(peer.port)]
    aec = ["-aec", peer.aet]
    # DCMTK 3.6.7 findscu writes every response in its dump layout to its
    # log (stderr) by default
    dcmtk = [tools.dcmtk_findscu, *aec, *study_query_args("dcmtk"), *host]
    pyn = [*tools.pynetdicom_findscu, *aec, *study_query_args("pynetdicom"), *host]
    checks = {
        DCMTK: (dcmtk, b"Find Response:"),
        PYNETDICOM: (pyn, b"Find SCP Response:"),
    }
    for tool, (argv, marker) in checks.items():
        n = count_responses(argv, marker)
        if n != studies:
            raise BenchError(f"case 1: {tool} got {n} responses, expected {studies}: "
                             f"{shlex.join(argv)}")
    formats = [f for f in ("dump", "ndjson") if f in tools.dimsekit_formats]
    skipped = [f for f in ("dump", "ndjson") if f not in tools.dimsekit_formats]
    for fmt in skipped:
        note(f"case 1: --format {fmt} skipped: `dimsekit find --help` does not list it "
             f"(it lists: {', '.join(tools.dimsekit_formats)})")
        rows.append(Row(f"1 {studies}-match {fmt}", DIMSEKIT, None, None, None,
                        note=f"skipped: dimsekit find has no --format {fmt}"))
    for fmt in formats:
        dk = [*tools.dimsekit, "find", "--format", fmt, *aec,
              *study_query_args("dimsekit"), *host]
        marker = b"Find Response:" if fmt == "dump" else b"\n"
        n = count_responses(dk, marker)
        if n != studies:
            raise BenchError(f"case 1: dimsekit --format {fmt} produced {n} responses, "
                             f"expected {studies}")
        name = f"1 {studies}-match {fmt}"
        commands = {DIMSEKIT: dk, DCMTK: dcmtk, PYNETDICOM: pyn}
        results = {
            DIMSEKIT: Result(name, DIMSEKIT, f"dimsekit find --format {fmt}", dk),
            DCMTK: Result(name, DCMTK, "findscu (its only text output: the dump "
                          "in its log)", dcmtk),
            PYNETDICOM: Result(name, PYNETDICOM, "pynetdicom findscu (pretty-prints "
                               "each response)", pyn),
        }
        # the response-count checks above were the warm-up runs
        alternate(f"case 1 {fmt}", runs, commands, results, warmup=False)
        out.extend(results.values())
        d, k, p = results[DIMSEKIT], results[DCMTK], results[PYNETDICOM]
        for res in (d, k, p):
            row = Row(name, res.tool, res.median_wall, res.median_cpu, res.median_maxrss,
                      vs_dcmtk=res.median_wall / k.median_wall,
                      vs_pynetdicom=res.median_wall / p.median_wall)
            if res is d:
                ok = row.vs_dcmtk <= 1.2 and row.vs_pynetdicom <= 0.3
                row.target = "<=1.2x dcmtk, <=0.3x pynetdicom"
                row.verdict = "PASS" if ok else "FAIL"
                row.note = f"Orthanc {env_note}"
            if res is k and fmt != "dump":
                row.note = "DCMTK has no JSON output: its dump run"
            rows.append(row)


# pynetdicom's findscu has no --repeat: this loop is the same library call
# (send_c_find, pynetdicom's defaults) on one association, as a reference
# for what plain pynetdicom costs per query
PYNETDICOM_LOOP = r"""
import json, sys
from pydicom import Dataset
from pynetdicom import AE
host, port, aet, model, n, spec = sys.argv[1:7]
def build(spec):
    ds = Dataset()
    for key, value in spec.items():
        if isinstance(value, list):
            value = [build(item) for item in value]
        setattr(ds, key, value)
    return ds
ds = build(json.loads(spec))
ae = AE(ae_title="FINDSCU")
ae.add_requested_context(model)
assoc = ae.associate(host, int(port), ae_title=aet)
assert assoc.is_established
for _ in range(int(n)):
    got = 0
    for status, ident in assoc.send_c_find(ds, model):
        if status and status.Status in (0xFF00, 0xFF01):
            got += 1
    assert got == 1, got
assoc.release()
"""
#: queries of that loop in case 2 (at most)
PYNETDICOM_LOOP_QUERIES = 50
#: case 2's target, ms a query (wlmscpfs row)
CASE2_TARGET_MS = 0.6
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
WORKLIST_FIND = "1.2.840.10008.5.1.4.31"


def key_spec(keys: Sequence[str], values: dict[str, str]) -> dict:
    """``-k`` style keys (``Seq[0].Key``) as a nested dict for the loop above."""
    spec: dict = {}
    for key in keys:
        value = values.get(key, "")
        if "[0]." in key:
            seq, _, inner = key.partition("[0].")
            spec.setdefault(seq, [{}])[0][inner] = value
        else:
            spec[key] = value
    return spec


@dataclass
class OneMatchPeer:
    """Where case 2 sends its one-match query, in each tool's syntax."""

    label: str
    port: int
    dimsekit: list[str]  # dimsekit / pynetdicom -k syntax (KEY=VALUE)
    dcmtk: list[str]
    model: str
    aet: str
    spec: dict


def orthanc_one_match(peer: OrthancPeer) -> OneMatchPeer:
    uid = study_uid(42)

    def args(style: str) -> list[str]:
        out = study_query_args(style)
        i = out.index("StudyInstanceUID" if style == "dcmtk" else "StudyInstanceUID=")
        out[i] = f"StudyInstanceUID={uid}"
        return ["-aec", peer.aet, *out]

    spec = {"QueryRetrieveLevel": "STUDY",
            **key_spec(STUDY_KEYS, {"StudyInstanceUID": uid})}
    return OneMatchPeer("Orthanc", peer.port, args("dimsekit"), args("dcmtk"),
                        STUDY_ROOT_FIND, peer.aet, spec)


def worklist_one_match(port: int) -> OneMatchPeer:
    def args(style: str) -> list[str]:
        out = ["-W", "-aec", "WL1"]
        for key in WORKLIST_KEYS:
            out += ["-k", key if style == "dcmtk" else f"{key}="]
        return out

    return OneMatchPeer("wlmscpfs", port, args("dimsekit"), args("dcmtk"), WORKLIST_FIND,
                        "WL1", key_spec(WORKLIST_KEYS, {}))


def case2(tools: Tools, target: OneMatchPeer, runs: int, repeat: int,
          out: list[Result], rows: list[Row], judge: bool) -> None:
    note(f"case 2: {repeat} one-match queries on one association ({target.label})")
    host = [LOOPBACK, str(target.port)]
    commands: dict[str, list[str]] = {}
    # pynetdicom pays ~45 ms a query (no TCP_NODELAY): 50 queries (a quarter
    # of a smaller --repeat) give a steady per-query figure; 2,000 would take
    # ~90 s a run
    loop_n = max(2, min(repeat // 4, PYNETDICOM_LOOP_QUERIES))
    for n in (1, repeat):
        commands[f"{DIMSEKIT} x{n}"] = [*tools.dimsekit, "find", "--repeat", str(n),
                                        *target.dimsekit, *host]
        commands[f"{DCMTK} x{n}"] = [tools.dcmtk_findscu, "--repeat", str(n),
                                     *target.dcmtk, *host]
    for n in (1, loop_n):
        commands[f"pynetdicom-loop x{n}"] = [
            tools.python, "-c", PYNETDICOM_LOOP, LOOPBACK, str(target.port), target.aet,
            target.model, str(n), json.dumps(target.spec)]
    n_dk = count_responses(commands[f"{DIMSEKIT} x{repeat}"], b"Find Response:")
    if n_dk != repeat:
        raise BenchError(f"case 2: dimsekit got {n_dk} responses, expected {repeat}")
    name = f"2 {repeat}x one-match {target.label}"
    results = {t: Result(name, t, t, argv) for t, argv in commands.items()}
    alternate(f"case 2 {target.label}", runs, commands, results)
    out.extend(results.values())
    per: dict[str, tuple[float, float]] = {}
    new_rows = []
    for tool, label, n in ((DIMSEKIT, DIMSEKIT, repeat), (DCMTK, DCMTK, repeat),
                           ("pynetdicom-loop", "pynetdicom send_c_find loop", loop_n)):
        r1, rn = results[f"{tool} x1"], results[f"{tool} x{n}"]
        # per-round differences, then the median: each pair ran in one round
        pairs = list(zip(r1.samples, rn.samples, strict=True))
        walls = [(b["wall"] - a["wall"]) / (n - 1) for a, b in pairs]
        cpus = [(b["cpu"] - a["cpu"]) / (n - 1) for a, b in pairs]
        per[tool] = (statistics.median(walls) * 1000, statistics.median(cpus) * 1000)
        rn.extra["per_query_ms"] = per[tool][0]
        rn.extra["per_query_cpu_ms"] = per[tool][1]
        new_rows.append(Row(name, label, per[tool][0], per[tool][1], rn.median_maxrss,
                            unit="ms/q", note=f"whole run x{n}: {rn.median_wall:.3f} s, "
                                              f"x1: {r1.median_wall:.3f} s"))
    for row in new_rows:
        row.vs_dcmtk = row.wall / per[DCMTK][0] if per[DCMTK][0] > 0 else None
        row.vs_pynetdicom = row.wall / per["pynetdicom-loop"][0]
        if row.tool == DIMSEKIT:
            row.target = f"<={CASE2_TARGET_MS} ms/query" if judge else "(info: peer-bound)"
            if judge:
                row.verdict = "PASS" if row.wall <= CASE2_TARGET_MS else "FAIL"
            else:
                row.note += (f"; the peer itself needs ~{per[DCMTK][0]:.2f} ms a query "
                             f"(DCMTK's figure), dimsekit adds "
                             f"{row.wall - per[DCMTK][0]:.2f} ms; the target is judged on "
                             f"wlmscpfs")
        if row.tool == DCMTK:
            row.note += f"; {target.label} with TCP_NODELAY=1"
        if row.tool.startswith("pynetdicom"):
            row.note += " (findscu has no --repeat: library loop, pynetdicom defaults)"
    rows.extend(new_rows)


def imports_heavy(tools: Tools, args: list[str]) -> list[str]:
    """Which of pynetdicom/pydicom ``dimsekit ARGS`` imports (python -X importtime)."""
    proc = subprocess.run([tools.dimsekit_python, "-X", "importtime", tools.dimsekit[0], *args],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, env=bench_env(), check=False)
    found = set()
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        if line.startswith("import time:"):
            mod = line.rsplit("|", 1)[-1].strip()
            top = mod.split(".")[0]
            if top in ("pynetdicom", "pydicom"):
                found.add(top)
    return sorted(found)


def case3(tools: Tools, runs: int, out: list[Result], rows: list[Row]) -> None:
    note("case 3: start-up")
    commands = {
        "dimsekit --help": [*tools.dimsekit, "--help"],
        "dimsekit find --help": [*tools.dimsekit, "find", "--help"],
        "python -c pass": [tools.dimsekit_python, "-c", "pass"],
        "findscu --help (DCMTK)": [tools.dcmtk_findscu, "--help"],
        "pynetdicom findscu --help": [*tools.pynetdicom_findscu, "--help"],
    }
    results = {t: Result("3 start-up", t, t, argv) for t, argv in commands.items()}
    # no RSS wrapper here: GNU time would add its ~1 ms to a 10 ms run
    alternate("case 3", runs, commands, results, rss=False)
    out.extend(results.values())
    heavy = imports_heavy(tools, ["--help"])
    heavy_find = imports_heavy(tools, ["find", "--help"])
    results["dimsekit --help"].extra["heavy_imports"] = heavy
    results["dimsekit find --help"].extra["heavy_imports"] = heavy_find
    base = results["findscu --help (DCMTK)"].median_wall
    for tool, res in results.items():
        row = Row("3 start-up", tool, res.median_wall, res.median_cpu, res.median_maxrss,
                  vs_dcmtk=res.median_wall / base)
        if tool == "dimsekit --help":
            ok = res.median_wall <= 0.10 and not heavy
            row.target = "<=0.10 s, no pynetdicom/pydicom"
            row.verdict = "PASS" if ok else "FAIL"
            row.note = "imports: " + (", ".join(heavy) or "neither pynetdicom nor pydicom")
        if tool == "dimsekit find --help":
            row.note = "imports: " + (", ".join(heavy_find) or "neither pynetdicom nor pydicom")
        rows.append(row)


def case4(tools: Tools, port: int, runs: int, sizes: Sequence[int],
          out: list[Result], rows: list[Row]) -> None:
    small, big = sizes
    note(f"case 4: peak RSS, {small}- and {big}-response worklist queries (wlmscpfs)")
    host = [LOOPBACK, str(port)]

    def wl_args(style: str, n: int) -> list[str]:
        args = ["-W", "-aec", f"WL{n}"]
        for key in WORKLIST_KEYS:
            args += ["-k", key if style == "dcmtk" else f"{key}="]
        return args

    per_tool: dict[str, dict[int, Result]] = {}
    for n in sizes:
        commands = {
            DIMSEKIT: [*tools.dimsekit, "find", *wl_args("dimsekit", n), *host],
            DCMTK: [tools.dcmtk_findscu, *wl_args("dcmtk", n), *host],
            PYNETDICOM: [*tools.pynetdicom_findscu, *wl_args("pynetdicom", n), *host],
        }
        got = count_responses(commands[DIMSEKIT], b"Find Response:")
        if got != n:
            raise BenchError(f"case 4: dimsekit got {got} worklist responses, expected {n}")
        name = f"4 worklist {n}"
        results = {t: Result(name, t, t, argv) for t, argv in commands.items()}
        alternate(f"case 4 ({n})", runs, commands, results, warmup=False)
        out.extend(results.values())
        for tool, res in results.items():
            per_tool.setdefault(tool, {})[n] = res
    for tool, by_n in per_tool.items():
        for n in sizes:
            res = by_n[n]
            dcmtk = per_tool[DCMTK][n]
            row = Row(f"4 worklist {n}", tool, res.median_wall, res.median_cpu,
                      res.median_maxrss, vs_dcmtk=res.median_maxrss / dcmtk.median_maxrss)
            if n == big:
                growth = res.median_maxrss / by_n[small].median_maxrss
                res.extra["rss_growth"] = growth
                row.note = (f"peak RSS {big} vs {small} responses: {growth:.2f}x "
                            f"(case 4's 'vs DCMTK' column compares peak RSS)")
                if tool == DIMSEKIT:
                    ok = growth <= 1.3 and res.median_maxrss <= 100
                    row.target = f"RSS <=1.3x the {small} run, <=100 MiB"
                    row.verdict = "PASS" if ok else "FAIL"
            rows.append(row)
    # the stream's throughput: responses a second over the whole run (start-up,
    # association and wlmscpfs reading its files included, as a user waits)
    rate = {tool: big / by_n[big].median_wall for tool, by_n in per_tool.items()}
    for tool, by_n in per_tool.items():
        by_n[big].extra["responses_per_s"] = rate[tool]
        row = Row(f"4 worklist {big} rate", tool, rate[tool], None, None, unit="resp/s",
                  vs_dcmtk=rate[tool] / rate[DCMTK],
                  vs_pynetdicom=rate[tool] / rate[PYNETDICOM])
        if tool == DIMSEKIT:
            share = rate[tool] / rate[DCMTK]
            row.target = ">=90% of dcmtk's responses/s"
            row.verdict = "PASS" if share >= 0.9 else "FAIL"
            row.note = (f"{rate[tool]:,.0f} responses/s vs DCMTK's {rate[DCMTK]:,.0f}: "
                        f"{share:.1%} (the 'vs' columns compare responses/s)")
        rows.append(row)


# --------------------------------------------------------------------------
# cases 5-7: batches of queries (--batch), in parallel (--parallel), and
# drill-down (--drill-down)
# --------------------------------------------------------------------------

#: the placeholder PatientID in a query file template: every query file is
#: the template with it replaced by a value of the same length (8 characters)
ID_PLACEHOLDER = "@@ID@@@@"
#: return keys of case 5's worklist queries (PatientID comes from the CSV)
WL_BATCH_KEYS = tuple(k for k in WORKLIST_KEYS if k != "PatientID")
#: return keys of case 5's Orthanc queries (Study Root, STUDY level)
STUDY_BATCH_KEYS = ("PatientName", "StudyDate", "StudyInstanceUID")


def build_dataset(spec: dict):
    """A pydicom Dataset from a key_spec()-style dict."""
    from pydicom import Dataset

    ds = Dataset()
    for key, value in spec.items():
        setattr(ds, key, [build_dataset(v) for v in value] if isinstance(value, list)
                else value)
    return ds


def query_template(spec: dict, sop_class: str) -> bytes:
    """A query file (with file meta, as dump2dcm writes one) whose PatientID is
    ID_PLACEHOLDER."""
    from pydicom import dcmwrite
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = build_dataset({**spec, "PatientID": ID_PLACEHOLDER})
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = _uid("query", 0)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    data = buf.getvalue()
    if data.count(ID_PLACEHOLDER.encode()) != 1:
        raise BenchError("query template: the PatientID placeholder is not unique")
    return data


@dataclass
class Batch:
    """One batch of queries, as dimsekit's CSV and as DCMTK query files."""

    csv: Path  # header PatientID, one row per query
    argfile: Path | None  # DCMTK command file: one query file path per line
    queries: int

    @property
    def dcmtk_files(self) -> list[str]:
        """findscu's file arguments: a command file (@FILE, DCMTK expands it)."""
        return [f"@{self.argfile}"] if self.argfile else []


def make_batch(cache: Path, name: str, ids: Sequence[str], info: dict, *,
               template: bytes | None = None,
               extra: tuple[str, Callable[[int], str]] | None = None) -> Batch:
    """``<cache>/batch/<name>/``: ``ids.csv`` and, given a ``template``, one
    query file per row (``q00001.dcm`` ...) plus ``args.txt`` listing them.

    ``extra``: a second CSV column (keyword, value of row i).  Reused when the
    cached copy was made from the same inputs."""
    folder = cache / "batch" / name
    digest = hashlib.sha256(repr((DATA_VERSION, list(ids), template,
                                  extra and [extra[0], *map(extra[1], range(len(ids)))]
                                  )).encode()).hexdigest()
    stamp = folder / "generated.json"
    csv_path, argfile = folder / "ids.csv", folder / "args.txt"
    meta: dict = {}
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(stamp.read_text())
    if meta.get("digest") == digest:
        info.setdefault("batch_generation", {})[name] = {**meta, "reused": True}
        return Batch(csv_path, argfile if template else None, len(ids))
    note(f"batch {name}: writing {len(ids)} rows"
         + (" and as many query files" if template else "") + f" to {folder} ...")
    t0 = time.perf_counter()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with open(csv_path, "w", encoding="ascii", newline="") as fh:
        fh.write("PatientID" + (f",{extra[0]}" if extra else "") + "\r\n")
        for i, value in enumerate(ids):
            fh.write(value + (f",{extra[1](i)}" if extra else "") + "\r\n")
    if template:
        width = len(ID_PLACEHOLDER)
        names = []
        for i, value in enumerate(ids, 1):
            if len(value) != width:
                raise BenchError(f"batch {name}: PatientID {value!r} is not {width} long")
            path = folder / f"q{i:06d}.dcm"
            path.write_bytes(template.replace(ID_PLACEHOLDER.encode(), value.encode()))
            names.append(str(path))
        argfile.write_text("\n".join(names) + "\n")
    meta = {"digest": digest, "rows": len(ids),
            "seconds": round(time.perf_counter() - t0, 1),
            "date": datetime.datetime.now().isoformat(timespec="seconds")}
    stamp.write_text(json.dumps(meta))
    info.setdefault("batch_generation", {})[name] = {**meta, "reused": False}
    return Batch(csv_path, argfile if template else None, len(ids))


def return_keys(keys: Sequence[str], style: str) -> list[str]:
    out: list[str] = []
    for key in keys:
        out += ["-k", key if style == "dcmtk" else f"{key}="]
    return out


def skipped_row(case: str, options: Sequence[str], rows: list[Row]) -> None:
    note(f"case {case}: dimsekit skipped: `dimsekit find --help` does not list "
         f"{', '.join(options)}")
    rows.append(Row(case, DIMSEKIT, None, None, None,
                    note=f"skipped: dimsekit find has no {', '.join(options)}"))


def case5_worklist(tools: Tools, cache: Path, port: int, items: int, queries: int,
                   runs: int, info: dict, out: list[Result], rows: list[Row]) -> None:
    """queries one-match worklist queries on one association, against wlmscpfs
    serving `items` items; the queries cycle over the items' PatientIDs."""
    name = f"5 batch {queries} wlmscpfs({items})"
    note(f"case 5: {queries} one-match worklist queries on one association "
         f"(wlmscpfs, {items} items, TCP_NODELAY=1)")
    spec = key_spec(WL_BATCH_KEYS, {})
    batch = make_batch(cache, f"wl{items}-{queries}",
                       [f"WP{i % items:06d}" for i in range(queries)], info,
                       template=query_template(spec, WORKLIST_FIND))
    host = [LOOPBACK, str(port)]
    aec = ["-W", "-aec", f"WL{items}"]
    commands = {DCMTK: [tools.dcmtk_findscu, *aec, *host, *batch.dcmtk_files]}
    missing = tools.missing_options("--batch")
    if not missing:
        commands[DIMSEKIT] = [*tools.dimsekit, "find", "--batch", str(batch.csv), *aec,
                              *return_keys(WL_BATCH_KEYS, "dimsekit"), *host]
    for tool, argv in commands.items():
        got = count_responses(argv, b"Find Response:", timeout=1800)
        if got != queries:
            raise BenchError(f"case 5: {tool} got {got} responses for {queries} one-match "
                             f"queries: {shlex.join(argv[:12])} ...")
    results = {t: Result(name, t, f"{t}: {queries} queries on one association", argv)
               for t, argv in commands.items()}
    alternate(f"case 5 wlmscpfs({items})", runs, commands, results, warmup=False)
    out.extend(results.values())
    k = results[DCMTK]
    per_query = f"{k.median_wall / queries * 1000:.2f} ms a query"
    rows.append(Row(name, DCMTK, k.median_wall, k.median_cpu, k.median_maxrss, vs_dcmtk=1.0,
                    note=f"{per_query}; {queries} query files on one association "
                         f"(findscu @args.txt)"))
    if missing:
        skipped_row(name, missing, rows)
        return
    d = results[DIMSEKIT]
    ratio = d.median_wall / k.median_wall
    rows.append(Row(name, DIMSEKIT, d.median_wall, d.median_cpu, d.median_maxrss,
                    vs_dcmtk=ratio, target="<=1.5x dcmtk",
                    verdict="PASS" if ratio <= 1.5 else "FAIL",
                    note=f"{d.median_wall / queries * 1000:.2f} ms a query "
                         f"(--batch of {queries} rows)"))


def case5_parallel(tools: Tools, cache: Path, peer: OrthancPeer, queries: int, runs: int,
                   nodelay: bool, info: dict, out: list[Result], rows: list[Row]) -> None:
    """dimsekit --batch --parallel 4 against DCMTK's same queries, sequential,
    on one association; Orthanc holding DRILL_STUDIES patients, one study each."""
    name = f"5 batch {queries} Orthanc --parallel 4"
    env_note = orthanc_env_note(nodelay)
    note(f"case 5: {queries} one-match STUDY queries by PatientID against Orthanc "
         f"({env_note})")
    spec = {"QueryRetrieveLevel": "STUDY", **key_spec(STUDY_BATCH_KEYS, {})}
    batch = make_batch(cache, f"orthanc{DRILL_STUDIES}-{queries}",
                       [drill_patient_id(i % DRILL_STUDIES) for i in range(queries)], info,
                       template=query_template(spec, STUDY_ROOT_FIND))
    host = [LOOPBACK, str(peer.port)]
    commands = {DCMTK: [tools.dcmtk_findscu, "-S", "-aec", peer.aet, *host,
                        *batch.dcmtk_files]}
    missing = tools.missing_options("--batch", "--parallel")
    if not missing:
        commands[DIMSEKIT] = [*tools.dimsekit, "find", "--batch", str(batch.csv),
                              "--parallel", "4", "-S", "-k", "QueryRetrieveLevel=STUDY",
                              *return_keys(STUDY_BATCH_KEYS, "dimsekit"),
                              "-aec", peer.aet, *host]
    for tool, argv in commands.items():
        got = count_responses(argv, b"Find Response:", timeout=1800)
        if got != queries:
            raise BenchError(f"case 5: {tool} got {got} responses for {queries} one-match "
                             f"queries: {shlex.join(argv[:14])} ...")
    results = {t: Result(name, t, f"{t}: {queries} queries", argv)
               for t, argv in commands.items()}
    alternate("case 5 Orthanc", runs, commands, results, warmup=False)
    out.extend(results.values())
    k = results[DCMTK]
    rows.append(Row(name, DCMTK, k.median_wall, k.median_cpu, k.median_maxrss, vs_dcmtk=1.0,
                    note=f"sequential, one association: "
                         f"{k.median_wall / queries * 1000:.1f} ms a query; Orthanc "
                         f"{env_note}"))
    if missing:
        skipped_row(name, missing, rows)
        return
    d = results[DIMSEKIT]
    ratio = d.median_wall / k.median_wall
    rows.append(Row(name, DIMSEKIT, d.median_wall, d.median_cpu, d.median_maxrss,
                    vs_dcmtk=ratio, target="<=0.5x dcmtk (sequential)",
                    verdict="PASS" if ratio <= 0.5 else "FAIL",
                    note="--batch --parallel 4"))


#: case 6's shell loop, as a user writes it: one findscu STUDY query, the
#: StudyInstanceUIDs cut out of its log (Orthanc pads odd-length UIDs with a
#: NUL, which findscu prints), then one findscu process per study
DRILL_SHELL = r"""
findscu=$1 host=$2 port=$3 aec=$4
"$findscu" -S -aec "$aec" -k QueryRetrieveLevel=STUDY -k StudyInstanceUID "$host" "$port" 2>&1 |
  tr -d '\000' | sed -n 's/^.*(0020,000d) UI \[\([0-9.]*\)\].*$/\1/p' |
  while read -r uid; do
    "$findscu" -S -aec "$aec" -k QueryRetrieveLevel=SERIES -k StudyInstanceUID="$uid" \
      -k SeriesInstanceUID "$host" "$port" || exit
  done
"""


def case6(tools: Tools, peer: OrthancPeer, runs: int, nodelay: bool,
          out: list[Result], rows: list[Row]) -> None:
    studies = DRILL_STUDIES
    series = sum(drill_series_count(i) for i in range(studies))
    name = f"6 drill-down {studies} studies"
    env_note = orthanc_env_note(nodelay)
    note(f"case 6: drill-down of {studies} studies ({series} series) to SERIES against "
         f"Orthanc ({env_note})")
    host = [LOOPBACK, str(peer.port)]
    shell_tool, loop_tool = "findscu shell loop", "pynetdicom send_c_find loop"
    commands = {
        shell_tool: ["/bin/sh", "-c", DRILL_SHELL, "sh", tools.dcmtk_findscu, *host,
                     peer.aet],
        loop_tool: [tools.python, str(Path(__file__).with_name("pynetdicom_drilldown.py")),
                    *host, peer.aet],
    }
    got = count_responses(commands[shell_tool], b"Find Response:")
    if got != series:
        raise BenchError(f"case 6: the findscu loop got {got} series, expected {series}")
    text = capture(commands[loop_tool]).stdout.decode().strip()
    if text != f"studies={studies} series={series}":
        raise BenchError(f"case 6: the pynetdicom loop says {text!r}, expected "
                         f"studies={studies} series={series}")
    missing = tools.missing_options("--drill-down", "--parallel")
    dk_note = ""
    if not missing:
        commands[DIMSEKIT] = [*tools.dimsekit, "find", "-S", "-k", "QueryRetrieveLevel=STUDY",
                              "-k", "StudyInstanceUID=", "--drill-down", "SERIES",
                              "--parallel", "4", "-aec", peer.aet, *host]
        got = count_responses(commands[DIMSEKIT], b"Find Response:")
        if got not in (series, studies + series):
            raise BenchError(f"case 6: dimsekit printed {got} responses, expected {series} "
                             f"series (+ {studies} studies)")
        dk_note = f"printed {got} responses ({studies} studies + {series} series)" \
            if got > series else f"printed the {series} series"
    results = {t: Result(name, t, t, argv) for t, argv in commands.items()}
    # the shell's CPU time includes its children (wait4 counts waited-for
    # descendants); its peak RSS would be one findscu's: not reported
    alternate("case 6", runs, commands, results, warmup=False, no_rss={shell_tool})
    out.extend(results.values())
    sh, pl = results[shell_tool], results[loop_tool]
    rows.append(Row(name, shell_tool, sh.median_wall, sh.median_cpu, None, vs_dcmtk=1.0,
                    vs_pynetdicom=sh.median_wall / pl.median_wall,
                    note=f"1 + {studies} findscu processes, sequential; Orthanc {env_note}"))
    rows.append(Row(name, loop_tool, pl.median_wall, pl.median_cpu, pl.median_maxrss,
                    vs_dcmtk=pl.median_wall / sh.median_wall, vs_pynetdicom=1.0,
                    note=f"1 + {studies} queries on one association, pynetdicom defaults "
                         f"(bench/pynetdicom_drilldown.py)"))
    if missing:
        skipped_row(name, missing, rows)
        return
    d = results[DIMSEKIT]
    vs_sh, vs_pl = d.median_wall / sh.median_wall, d.median_wall / pl.median_wall
    rows.append(Row(name, DIMSEKIT, d.median_wall, d.median_cpu, d.median_maxrss,
                    vs_dcmtk=vs_sh, vs_pynetdicom=vs_pl,
                    target="<=0.5x shell loop, <1x pynetdicom",
                    verdict="PASS" if vs_sh <= 0.5 and vs_pl < 1 else "FAIL",
                    note=f"--drill-down SERIES --parallel 4; {dk_note}; 'vs DCMTK' is vs "
                         f"the findscu shell loop"))


def case7(tools: Tools, cache: Path, port: int, sizes: Sequence[int], runs: int,
          info: dict, out: list[Result], rows: list[Row]) -> None:
    """Peak RSS of dimsekit find --batch with few and many rows (wlmscpfs, 1 item).

    Every row matches the one item (PatientID WP000000) and every row is
    distinct: its second column, RequestedProcedureDescription, is not a
    matching key for wlmscpfs, which returns the item's own value.  The
    output goes to a file (not /dev/null) and every run's responses are
    counted: no separate counting run of 100,000 queries."""
    small, big = sizes
    name = "7 batch memory"
    note(f"case 7: peak RSS of dimsekit find --batch, {small} and {big} rows "
         f"(wlmscpfs, 1 item)")
    missing = tools.missing_options("--batch")
    if missing:
        skipped_row(name, missing, rows)
        return
    batches = {n: make_batch(cache, f"memory-{n}", ["WP000000"] * n, info,
                             extra=("RequestedProcedureDescription",
                                    lambda i: f"row {i + 1:07d}"))
               for n in sizes}
    host = [LOOPBACK, str(port)]
    commands = {n: [*tools.dimsekit, "find", "--batch", str(b.csv), "-W", "-aec", "WL1",
                    *return_keys(WL_BATCH_KEYS, "dimsekit"), *host]
                for n, b in batches.items()}
    results = {n: Result(f"7 batch {n} rows", DIMSEKIT, f"dimsekit find --batch, {n} rows",
                         argv) for n, argv in commands.items()}
    with tempfile.TemporaryDirectory(prefix="bench-case7-") as tmp:
        dump = Path(tmp) / "out.txt"
        for r in range(runs):
            for n in (sizes if r % 2 == 0 else sizes[::-1]):
                s = measure(commands[n], stdout=dump)
                check_run(f"case 7/{n} rows", commands[n], s)
                got = dump.read_bytes().count(b"Find Response:")
                if got != n:
                    raise BenchError(f"case 7: dimsekit got {got} responses for {n} rows")
                results[n].samples.append(asdict(s))
            note(f"  case 7 round {r + 1}/{runs}: " + "  ".join(
                f"{n} rows={results[n].samples[-1]['wall']:.1f}s/"
                f"{results[n].samples[-1]['maxrss']:.1f}MiB" for n in sizes))
    for res in results.values():
        res.summarise()
    out.extend(results.values())
    r_small, r_big = results[small], results[big]
    growth = r_big.median_maxrss / r_small.median_maxrss
    r_big.extra["rss_growth"] = growth
    rows.append(Row(f"7 batch {small} rows", DIMSEKIT, r_small.median_wall,
                    r_small.median_cpu, r_small.median_maxrss,
                    note=f"{r_small.median_wall / small * 1000:.2f} ms a row"))
    rows.append(Row(f"7 batch {big} rows", DIMSEKIT, r_big.median_wall, r_big.median_cpu,
                    r_big.median_maxrss, target=f"RSS <=1.3x the {small}-row run",
                    verdict="PASS" if growth <= 1.3 else "FAIL",
                    note=f"peak RSS {big} vs {small} rows: {growth:.2f}x; "
                         f"{r_big.median_wall / big * 1000:.2f} ms a row; output to a "
                         f"file, responses counted"))


# --------------------------------------------------------------------------
# profiling (optional): dimsekit under cProfile, every thread (profile_find.py)
# --------------------------------------------------------------------------


def profile(tools: Tools, jobs: dict[str, list[str]], outdir: Path) -> dict:
    """Run each ``dimsekit ARGS`` job once under bench/profile_find.py."""
    outdir.mkdir(parents=True, exist_ok=True)
    wrapper = Path(__file__).with_name("profile_find.py")
    summary = {}
    for name, args in jobs.items():
        prefix = outdir / name
        argv = [tools.dimsekit_python, str(wrapper), "--out", str(prefix), "--", *args]
        s = measure(argv, rss=False)
        check_run(f"profile {name}", argv, s)
        summary[name] = {"report": f"{prefix}.txt", "wall_under_profiler": s.wall}
        note(f"profile {name}: {prefix}.txt (+ one .prof per thread)")
    return summary


def profile_jobs(tools: Tools, peer: OneMatchPeer | OrthancPeer, repeat: int) -> dict:
    """Case 1's jobs for an OrthancPeer (case 1's Orthanc), case 2's for a
    OneMatchPeer."""
    host = [LOOPBACK, str(peer.port)]
    if isinstance(peer, OrthancPeer):
        return {f"case1-{fmt}": ["find", "--format", fmt, "-aec", peer.aet,
                                 *study_query_args("dimsekit"), *host]
                for fmt in ("dump", "ndjson") if fmt in tools.dimsekit_formats}
    return {f"case2-{peer.label.lower()}": ["find", "--repeat", str(repeat), *peer.dimsekit,
                                            *host]}


# --------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------


def fmt_num(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ms/q":
        return f"{v:.2f} ms"
    if unit == "resp/s":
        return f"{v:,.0f}/s"
    return f"{v:.3f} s"


def print_table(rows: list[Row]) -> None:
    head = ("case", "tool", "median wall", "median CPU", "peak RSS", "vs DCMTK",
            "vs pynetdicom", "target", "result")
    table = [head]
    for r in rows:
        table.append((
            r.case, r.tool, fmt_num(r.wall, r.unit), fmt_num(r.cpu, r.unit),
            f"{r.rss:.1f} MiB" if r.rss is not None else "-",
            f"{r.vs_dcmtk:.2f}x" if r.vs_dcmtk is not None else "-",
            f"{r.vs_pynetdicom:.2f}x" if r.vs_pynetdicom is not None else "-",
            r.target or "", r.verdict or "",
        ))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(head))]
    for j, row in enumerate(table):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))
    notes = [(r.case, r.tool, r.note) for r in rows if r.note]
    if notes:
        print()
        for case, tool, text in notes:
            print(f"  [{case} / {tool}] {text}")


def serve(tools: Tools, peer: OrthancPeer, wl_port: int, studies: int,
          sizes: Sequence[int], repeat: int) -> int:
    """Keep the peers up and print the commands of each case (for profiling)."""
    dk = shlex.join(tools.dimsekit)
    host = f"{LOOPBACK} {peer.port}"
    one = orthanc_one_match(peer)
    wl = worklist_one_match(wl_port)
    print(f"Orthanc ({studies} studies): DICOM {LOOPBACK}:{peer.port} AE {peer.aet}, "
          f"REST {peer.url}; TCP_NODELAY=1, as in case 2 (case 1 runs it without)")
    print(f"wlmscpfs: {LOOPBACK}:{wl_port}, AEs WL1, " + ", ".join(f"WL{n}" for n in sizes))
    print()
    print("case 1:  " + f"{dk} find -aec {peer.aet} "
          + shlex.join(study_query_args("dimsekit")) + f" {host} >/dev/null")
    print("case 2:  " + f"{dk} find --repeat {repeat} " + shlex.join(one.dimsekit)
          + f" {host}")
    print("case 2:  " + f"{dk} find --repeat {repeat} " + shlex.join(wl.dimsekit)
          + f" {LOOPBACK} {wl_port}")
    for n in sizes:
        args = ["-W", "-aec", f"WL{n}"] + [x for k in WORKLIST_KEYS for x in ("-k", f"{k}=")]
        print(f"case 4:  {dk} find {shlex.join(args)} {LOOPBACK} {wl_port} >/dev/null")
    print()
    print("serving until interrupted (Ctrl-C) ...", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench_find.py",
        description="Benchmark dimsekit find against DCMTK findscu and pynetdicom "
                    "findscu on real peers it starts itself (Orthanc, wlmscpfs).",
        epilog="Cases: 1 = 5,000-match STUDY query (dump, ndjson); 2 = 2,000 one-match "
               "queries on one association; 3 = start-up; 4 = peak RSS of 2,000- and "
               "20,000-response worklist queries, and the 20,000's responses/s; 5 = "
               "--batch of 10,000 one-match queries (wlmscpfs), and --batch --parallel 4 "
               "(Orthanc); 6 = --drill-down of 200 studies to SERIES (Orthanc); 7 = peak "
               "RSS of --batch with 1,000 and 100,000 rows (opt-in: --cases 7).")
    p.add_argument("--quick", action="store_true",
                   help="fewer, lighter runs (3 rounds; 1,000 studies; 500 repeats; "
                        "500/5,000 worklist items)")
    p.add_argument("--cases", default="1,2,3,4,5,6",
                   help="which cases to run (default: %(default)s; 7 only when asked for)")
    p.add_argument("--runs", type=int, help="measured rounds per case (default 7, quick 3; "
                                            "start-up: twice as many)")
    p.add_argument("--cache", type=Path,
                   default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "dimsekit-bench",
                   help="where generated data is kept between runs (default: %(default)s)")
    p.add_argument("--regenerate", action="store_true",
                   help="throw the cached data away and generate it again")
    p.add_argument("--studies", type=int, help="studies in Orthanc / matches in case 1 "
                                                "(default 5000)")
    p.add_argument("--repeat", type=int, help="queries in case 2 (default 2000, quick 500)")
    p.add_argument("--worklist-sizes", help="the two worklist sizes of case 4 "
                                            "(default 2000,20000)")
    p.add_argument("--batch-queries", type=int,
                   help="case 5: one-match queries in the wlmscpfs batch (default 10000, "
                        "quick 2000)")
    p.add_argument("--batch-items", type=int, default=10,
                   help="case 5: worklist items wlmscpfs serves; the queries cycle over "
                        "their PatientIDs (default %(default)s: wlmscpfs reads every item "
                        "for each query, ~0.05 ms an item)")
    p.add_argument("--parallel-queries", type=int,
                   help="case 5: queries in the Orthanc --parallel batch (default 400, "
                        "quick 200)")
    p.add_argument("--memory-rows",
                   help="case 7: the two batch sizes (default 1000,100000; quick "
                        "1000,20000)")
    p.add_argument("--peers-nodelay", action="store_true",
                   help="cases 1, 5 and 6: run Orthanc with TCP_NODELAY=1 as well (by "
                        "default it runs as users run it, with Nagle's algorithm on; case "
                        "2 always runs it with TCP_NODELAY=1)")
    p.add_argument("--json", type=Path, help="results file (default: "
                                             "<cache>/results/<timestamp>.json)")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="also run dimsekit once per case 1 format and case 2 peer under "
                        "bench/profile_find.py (cProfile, every thread); .prof files and "
                        "text reports go to DIR")
    p.add_argument("--no-compile", action="store_true",
                   help="do not byte-compile dimsekit and its plugins before the runs")
    p.add_argument("--serve", action="store_true",
                   help="start the peers (filling the cache if needed), print each case's "
                        "dimsekit command line and wait until interrupted: for profiling "
                        "by hand")
    p.add_argument("--dimsekit", help="the dimsekit executable (default: beside this "
                                      "Python, else on PATH)")
    p.add_argument("--dcmtk-findscu", help="DCMTK's findscu (default: on PATH, not "
                                           "pynetdicom's)")
    p.add_argument("--pynetdicom-findscu",
                   help="command for pynetdicom's findscu (default: "
                        "'<this python> -m pynetdicom findscu')")
    p.add_argument("--orthanc", help="the Orthanc executable (default: on PATH or /usr/sbin)")
    p.add_argument("--wlmscpfs", help="DCMTK's wlmscpfs (default: on PATH)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    studies = args.studies or (1000 if args.quick else 5000)
    repeat = args.repeat or (500 if args.quick else 2000)
    sizes = tuple(int(x) for x in (args.worklist_sizes or
                                   ("500,5000" if args.quick else "2000,20000")).split(","))
    cases = {c.strip() for c in args.cases.split(",") if c.strip()}
    batch_queries = args.batch_queries or (2000 if args.quick else 10000)
    parallel_queries = args.parallel_queries or (200 if args.quick else 400)
    memory_rows = tuple(int(x) for x in (args.memory_rows or (
        "1000,20000" if args.quick else "1000,100000")).split(","))
    if len(memory_rows) != 2 or memory_rows[0] >= memory_rows[1]:
        raise SystemExit("--memory-rows: two sizes, smaller first")
    if args.batch_items < 1:
        raise SystemExit("--batch-items: at least 1")
    if args.serve:
        cases = set()

    def interrupt(signum, frame):  # SIGTERM: stop the peers on the way out
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    if len(sizes) != 2 or sizes[0] >= sizes[1]:
        raise SystemExit("--worklist-sizes: two sizes, smaller first")
    if repeat < 2:
        raise SystemExit("--repeat: at least 2")
    cache: Path = args.cache.expanduser()
    if args.regenerate:
        for old in cache.glob("orthanc-*"):
            shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(cache / "worklist", ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    global GNU_TIME
    GNU_TIME = shutil.which("time", path="/usr/bin:/bin:/usr/local/bin")
    if not GNU_TIME:
        note("GNU time not found (apt-get install -y time): peak RSS is measured "
             "through a Python launcher whose own ~8 MiB floors the figures")
    info: dict = {"rss_method": "GNU time %M" if GNU_TIME else "python fork launcher"}
    results: list[Result] = []
    rows: list[Row] = []
    try:
        tools = Tools.find(args)
        note(f"dimsekit: {shlex.join(tools.dimsekit)} (formats: "
             f"{', '.join(tools.dimsekit_formats)})")
        note(f"DCMTK findscu: {tools.dcmtk_findscu}; pynetdicom findscu: "
             f"{shlex.join(tools.pynetdicom_findscu)}")
        if not args.no_compile:
            info["bytecode"] = byte_compile(tools)
            note(info["bytecode"])
        info["versions"] = versions(tools)
        info["source_commit_start"] = source_commit()
        info["machine"] = machine()
        info["python_env"] = {k: os.environ[k] for k in PYTHON_ENV if os.environ.get(k)}
        info["loadavg_start"] = os.getloadavg()
        if info["loadavg_start"][0] > 0.5 * (os.cpu_count() or 1):
            note(f"warning: load average {info['loadavg_start'][0]:.1f} on "
                 f"{os.cpu_count()} CPUs: other work on this machine makes figures noisy")
        profiles: dict = {}
        if "3" in cases:
            case3(tools, runs * 2, results, rows)
        info["orthanc_env"] = {}
        if "1" in cases or args.profile:
            # case 1: Orthanc as users run it, without TCP_NODELAY (unless
            # --peers-nodelay).  Two Orthancs cannot share one SQLite index:
            # this one stops before case 2's starts on the same storage
            with orthanc_peer(tools, cache, studies, info,
                              nodelay=args.peers_nodelay) as peer:
                info["orthanc_env"]["case 1"] = orthanc_env_note(args.peers_nodelay)
                if "1" in cases:
                    case1(tools, peer, runs, studies, args.peers_nodelay, results, rows)
                if args.profile:
                    profiles.update(profile(tools, profile_jobs(tools, peer, repeat),
                                            args.profile))
        if "2" in cases or args.profile or args.serve:
            with orthanc_peer(tools, cache, studies, info) as peer:
                info["orthanc_env"]["case 2"] = orthanc_env_note(True)
                one = orthanc_one_match(peer)
                if "2" in cases:
                    case2(tools, one, runs, repeat, results, rows, judge=False)
                if args.profile:
                    profiles.update(profile(tools, profile_jobs(tools, one, repeat),
                                            args.profile))
                if cases & {"2", "4"} or args.profile or args.serve:
                    wl_sizes = (1, *sizes) if "4" in cases or args.serve else (1,)
                    db = fill_worklists(cache, wl_sizes, info)
                    with wlmscpfs_peer(tools, db, "WL1") as port:
                        if args.serve:
                            return serve(tools, peer, port, studies, sizes, repeat)
                        if "2" in cases:
                            case2(tools, worklist_one_match(port), runs, repeat, results,
                                  rows, judge=True)
                        if args.profile:
                            profiles.update(profile(
                                tools, profile_jobs(tools, worklist_one_match(port), repeat),
                                args.profile))
                        if "4" in cases:
                            case4(tools, port, runs, sizes, results, rows)
        elif "4" in cases:
            db = fill_worklists(cache, (1, *sizes), info)
            with wlmscpfs_peer(tools, db, "WL1") as port:
                case4(tools, port, runs, sizes, results, rows)
        if cases & {"5", "7"}:
            db = fill_worklists(cache, (1, args.batch_items), info)
            with wlmscpfs_peer(tools, db, "WL1") as port:
                if "5" in cases:
                    case5_worklist(tools, cache, port, args.batch_items, batch_queries, runs,
                                   info, results, rows)
                if "7" in cases:
                    # RSS barely moves between rounds, and 100,000 rows take minutes
                    case7(tools, cache, port, memory_rows, min(runs, 3), info, results, rows)
        if cases & {"5", "6"}:
            with orthanc_peer(tools, cache, DRILL_STUDIES, info, drill=True,
                              nodelay=args.peers_nodelay) as peer:
                info["orthanc_env"]["cases 5/6"] = orthanc_env_note(args.peers_nodelay)
                if "5" in cases:
                    case5_parallel(tools, cache, peer, parallel_queries, runs,
                                   args.peers_nodelay, info, results, rows)
                if "6" in cases:
                    case6(tools, peer, runs, args.peers_nodelay, results, rows)
        info["loadavg_end"] = os.getloadavg()
        info["source_commit_end"] = source_commit()
    except BenchError as exc:
        note(f"bench_find: {exc}")
        return 2
    except KeyboardInterrupt:
        note("bench_find: interrupted")
        return 130
    finally:
        for proc in _LIVE[:]:  # a copy: each peer's context manager removes it
            _stop(proc)

    elapsed = time.perf_counter() - started
    order = {"1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5, "7": 6}  # case number first
    rows.sort(key=lambda r: order.get(r.case[:1], 9))  # stable: keeps tool order
    print()
    m = info["machine"]
    v = info["versions"]
    print(f"machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory']}, Linux {m['kernel']}; "
          f"load average at start {info['loadavg_start'][0]:.2f}, at end "
          f"{info.get('loadavg_end', (0,))[0]:.2f}")
    print(f"tools: dimsekit {v.get('dimsekit')} (pynetdicom {v.get('pynetdicom')}, pydicom "
          f"{v.get('pydicom')}, Python {v.get('python')}); {v.get('dcmtk')}; "
          f"Orthanc {info.get('orthanc_version', '-')}")
    if info.get("source_commit_start"):
        start, end = info["source_commit_start"], info.get("source_commit_end")
        print(f"source: {start}" + (f" at the start, {end} at the end (src/ changed during "
                                    f"the run: figures mix versions)" if end != start else ""))
    if info.get("python_env"):
        print("python environment (passed on to the tools as it is): " + ", ".join(
            f"{k}={v}" for k, v in info["python_env"].items()))
    if info.get("bytecode"):
        print(f"bytecode: {info['bytecode']} before the runs (as pip install does)")
    print(f"mode: {'quick' if args.quick else 'full'}, {runs} measured rounds per case "
          f"(start-up {runs * 2}), alternating tools, medians; benchmark took "
          f"{elapsed:.0f} s")
    for key in ("orthanc_generation", "orthanc_drill_generation", "worklist_generation"):
        if key in info:
            g = info[key]
            label = key.rsplit("_", 1)[0].replace("_", " ")
            print(f"{label} data: {'reused' if g.get('reused') else 'generated'}"
                  f" (generation took {g.get('seconds')} s)")
    if info.get("orthanc_env"):
        print("Orthanc's environment: " + "; ".join(
            f"{case}: {env}" for case, env in info["orthanc_env"].items())
            + "; wlmscpfs and the clients: TCP_NODELAY=1")
    print()
    print_table(rows)
    verdicts = [r.verdict for r in rows if r.verdict]
    failed = verdicts.count("FAIL")
    print()
    print(f"targets: {verdicts.count('PASS')} PASS, {failed} FAIL")

    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    json_path = args.json or cache / "results" / f"{stamp}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps({
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "runs": runs, "studies": studies, "repeat": repeat, "worklist_sizes": sizes,
        "batch_queries": batch_queries, "batch_items": args.batch_items,
        "parallel_queries": parallel_queries, "memory_rows": memory_rows,
        "drill_studies": DRILL_STUDIES,
        "elapsed_s": round(elapsed, 1),
        "env": BENCH_ENV,
        **info,
        "table": [asdict(r) for r in rows],
        "results": [asdict(r) for r in results],
        "profiles": profiles or None,
    }, indent=2))
    print(f"results: {json_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
