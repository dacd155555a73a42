"""Pytest fixtures that run REAL DICOM peers (DCMTK and Orthanc) on loopback.

Use from ``tests/conftest.py`` with::

    from realpeers import *  # noqa: F401,F403

Every peer is started once per test session on a free port, addressed as
127.0.0.1 only, in its own temporary directory, and is stopped (SIGTERM to its process group, then
SIGKILL) when the session ends, when its start-up fails, and, as a last resort,
at interpreter exit. A missing binary skips the test locally and fails it when
the environment says ``CI=true`` (see :func:`require_binary`).

Binding: neither DCMTK 3.6.7 (wlmscpfs, dcmqrscp) nor Orthanc 1.10 has an
option for the listen address; they bind 0.0.0.0 on the chosen port. Orthanc's
REST API refuses non-local clients (``RemoteAccessAllowed: false``). Clients
here only ever connect to 127.0.0.1.

Public fixtures (all session-scoped):

``sample_instances``
    ``tuple[Path, ...]``: the Part-10 files written by :func:`make_sample_instances`
    (described by :data:`SAMPLE_PATIENTS`).
``worklist_queries``
    ``tuple[Path, ...]``: DCMTK's 13 example worklist queries converted to
    ``wlistqry0.dcm`` .. ``wlistqry12.dcm``, in numeric order.
``wlmscpfs_peer``
    :class:`WorklistPeer`: DCMTK ``wlmscpfs`` serving DCMTK's example worklist
    (called AE ``OFFIS``).
``dcmqrscp_peer``
    :class:`ArchivePeer`: DCMTK ``dcmqrscp`` (called AE ``DCMQRSCP``) holding the
    sample instances; Patient Root and Study Root C-FIND at every level.
``orthanc_peer``
    :class:`OrthancPeer`: Orthanc (called AE ``ORTHANC``) holding the sample
    instances, with its REST API on ``http_port``.
``tls_material``
    :class:`TLSMaterial`: certificates and keys made with ``trustme`` for this
    session (a CA, a server certificate for 127.0.0.1 and localhost, a client
    certificate, an encrypted key, DER copies, a second, untrusted CA, ...).
``orthanc_tls_peer``
    :class:`OrthancPeer`: a second Orthanc holding the sample instances that
    speaks DICOM over TLS only, with :attr:`TLSMaterial.server_cert`, trusting
    :attr:`TLSMaterial.ca_cert` and requiring a client certificate.

Helpers: :func:`require_binary`, :func:`free_port`, :func:`make_sample_instances`,
:func:`run_findscu` (DCMTK findscu as a subprocess, responses counted from
``-X`` output), and the sample-data description :data:`SAMPLE_PATIENTS`,
:data:`SAMPLE_STUDIES`, :data:`SAMPLE_SERIES`, :data:`SAMPLE_IMAGES`.

PYTEST_DONT_REWRITE: this module has no asserts; the marker keeps pytest from
warning when a test module also lists it in ``pytest_plugins`` after a
conftest imported it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
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
from typing import NoReturn

import pytest

__all__ = [
    # fixtures
    "sample_instances",
    "worklist_queries",
    "wlmscpfs_peer",
    "dcmqrscp_peer",
    "orthanc_peer",
    "tls_material",
    "orthanc_tls_peer",
    # peer descriptions
    "DicomPeer",
    "WorklistPeer",
    "ArchivePeer",
    "OrthancPeer",
    "TLSMaterial",
    "make_tls_material",
    # sample data
    "SamplePatient",
    "SampleStudy",
    "SampleSeries",
    "SampleImage",
    "SAMPLE_PATIENTS",
    "SAMPLE_STUDIES",
    "SAMPLE_SERIES",
    "SAMPLE_IMAGES",
    "SAMPLE_UID_ROOT",
    "make_sample_instances",
    # helpers
    "FindscuResult",
    "run_findscu",
    "require_binary",
    "free_port",
    "READY_TIMEOUT",
    "STOP_GRACE",
    "SPAWN_ENV",
    "LOOPBACK",
]

#: Address every peer listens on (never anything but loopback).
LOOPBACK = "127.0.0.1"
#: Seconds a peer gets to answer after start before the fixture fails.
READY_TIMEOUT = 30.0
#: Seconds between SIGTERM and SIGKILL when stopping a peer.
STOP_GRACE = 5.0

_DCMTK_EXAMPLES = Path("/usr/share/doc/dcmtk/examples")
#: Environment additions for every process started here. DCMTK 3.6.7 leaves
#: Nagle's algorithm on unless ``TCP_NODELAY=1``: with it, storescu of the
#: sample data into dcmqrscp takes ~0.03 s instead of ~0.9 s, a findscu run
#: ~0.03 s instead of ~0.12 s.
SPAWN_ENV = {"TCP_NODELAY": "1"}
_SBIN_DIRS = os.pathsep.join(["/usr/local/sbin", "/usr/sbin", "/sbin"])


# --------------------------------------------------------------------------
# small helpers
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


def _natural_key(path: Path) -> tuple[str, int]:
    """Sort key: ``wlistqry2`` before ``wlistqry10``."""
    stem = path.stem
    digits = len(stem) - len(stem.rstrip("0123456789"))
    prefix, number = stem[: len(stem) - digits], stem[len(stem) - digits :]
    return prefix, int(number) if number else -1


def _dump2dcm_all(sources: Sequence[Path], target_dir: Path, suffix: str) -> tuple[Path, ...]:
    """Convert DCMTK dump files to DICOM files named ``<stem><suffix>``."""
    dump2dcm = require_binary("dump2dcm")
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(sources, key=_natural_key):
        target = target_dir / f"{source.stem}{suffix}"
        # +te: explicit VR little endian, silences "output transfer syntax unknown"
        _run_tool([dump2dcm, "+te", str(source), str(target)])
        written.append(target)
    return tuple(written)


def _example_dumps(pattern: str, minimum: int) -> list[Path]:
    """DCMTK example dump files matching *pattern*; require at least *minimum*."""
    found = sorted(_DCMTK_EXAMPLES.glob(pattern), key=_natural_key)
    if len(found) < minimum:
        _missing(f"DCMTK example files {_DCMTK_EXAMPLES}/{pattern} missing (found {len(found)})")
    return found


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
            preexec_fn=_set_parent_death_signal,
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


def _dicom_echo_ready(port: int, called_aet: str) -> Callable[[], bool]:
    """Readiness probe: a DCMTK ``echoscu`` to *called_aet* succeeds.

    No bare TCP poll first: DCMTK peers log an error for a connection that
    closes without an association request. echoscu fails within milliseconds
    while nothing listens.
    """
    echoscu = require_binary("echoscu")

    def probe() -> bool:
        result = subprocess.run(
            [echoscu, "-to", "5", "-ta", "5", "-aec", called_aet, LOOPBACK, str(port)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=15,
            check=False,
            env=_env(),
        )
        return result.returncode == 0

    return probe


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


def _store_with_storescu(port: int, called_aet: str, files: Sequence[Path]) -> None:
    """Send *files* to a peer with DCMTK ``storescu`` over one association."""
    storescu = require_binary("storescu")
    _run_tool([storescu, "-aec", called_aet, LOOPBACK, str(port), *map(str, files)])


# --------------------------------------------------------------------------
# peer descriptions
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
class WorklistPeer(DicomPeer):
    """``wlmscpfs`` serving DCMTK's example worklist.

    Attributes:
        worklist_dir: ``<workdir>/db/OFFIS``, holding the ``.wl`` files and ``lockfile``.
        worklist_files: the served ``wklist*.wl`` files, natural order.
        queries: DCMTK's example queries ``wlistqry0.dcm`` .. ``wlistqry12.dcm``.
    """

    worklist_dir: Path
    worklist_files: tuple[Path, ...]
    queries: tuple[Path, ...]


@dataclass(frozen=True)
class ArchivePeer(DicomPeer):
    """A query/retrieve peer holding the sample instances.

    Attributes:
        instances: the files stored into it (see :data:`SAMPLE_PATIENTS`).
        patients: :data:`SAMPLE_PATIENTS`, the description of what it holds.
    """

    instances: tuple[Path, ...]
    patients: tuple[SamplePatient, ...]


@dataclass(frozen=True)
class OrthancPeer(ArchivePeer):
    """Orthanc holding the sample instances.

    Attributes:
        http_port: its REST API port (no authentication, loopback only).
        config_path: the JSON configuration it was started with.
    """

    http_port: int
    config_path: Path

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<http_port>``."""
        return f"http://{self.host}:{self.http_port}"


# --------------------------------------------------------------------------
# sample data
# --------------------------------------------------------------------------

#: Made-up UID root of every sample UID.
SAMPLE_UID_ROOT = "1.2.826.0.1.3680043.10.1234"

_SOP_CLASS_FOR_MODALITY = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "OT": "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
}


@dataclass(frozen=True)
class SampleImage:
    """One sample instance (IMAGE level)."""

    sop_instance_uid: str
    instance_number: int
    sop_class_uid: str


@dataclass(frozen=True)
class SampleSeries:
    """One sample series; ``images`` in instance-number order."""

    series_instance_uid: str
    modality: str
    series_number: int
    series_description: str
    images: tuple[SampleImage, ...]


@dataclass(frozen=True)
class SampleStudy:
    """One sample study; ``modalities_in_study`` is what peers should derive."""

    study_instance_uid: str
    study_date: str
    study_time: str
    accession_number: str
    study_description: str
    study_id: str
    series: tuple[SampleSeries, ...]

    @property
    def modalities_in_study(self) -> tuple[str, ...]:
        return tuple(sorted({s.modality for s in self.series}))

    @property
    def image_count(self) -> int:
        return sum(len(s.images) for s in self.series)


@dataclass(frozen=True)
class SamplePatient:
    """One sample patient.

    ``patient_name`` is the Python string; ``specific_character_set`` is
    ``"ISO_IR 100"`` for the Latin-1 patient and ``None`` (default repertoire)
    for the others.
    """

    patient_id: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    specific_character_set: str | None
    studies: tuple[SampleStudy, ...]


def _patient(p: int, pid: str, name: str, birth: str, sex: str, charset: str | None,
             studies: Sequence[tuple[str, str, str, str, str, Sequence[tuple[str, str, int]]]]
             ) -> SamplePatient:
    """Build a patient with UIDs ``ROOT.1.p.s`` / ``ROOT.2.p.s.r`` / ``ROOT.3.p.s.r.i``."""
    built = []
    for s, (date, tm, accession, description, study_id, series) in enumerate(studies, 1):
        built_series = []
        for r, (modality, series_description, n_images) in enumerate(series, 1):
            images = tuple(
                SampleImage(
                    sop_instance_uid=f"{SAMPLE_UID_ROOT}.3.{p}.{s}.{r}.{i}",
                    instance_number=i,
                    sop_class_uid=_SOP_CLASS_FOR_MODALITY[modality],
                )
                for i in range(1, n_images + 1)
            )
            built_series.append(
                SampleSeries(f"{SAMPLE_UID_ROOT}.2.{p}.{s}.{r}", modality, r, series_description, images)
            )
        built.append(
            SampleStudy(f"{SAMPLE_UID_ROOT}.1.{p}.{s}", date, tm, accession, description, study_id,
                        tuple(built_series))
        )
    return SamplePatient(pid, name, birth, sex, charset, tuple(built))


#: The sample data: 3 patients, 4 studies, 6 series, 10 images.
SAMPLE_PATIENTS: tuple[SamplePatient, ...] = (
    _patient(1, "DK0001", "DOE^JOHN", "19700101", "M", None, [
        ("20240105", "093000", "ACC0001", "CT CHEST", "1001",
         [("CT", "AXIAL", 3), ("CT", "CORONAL", 2)]),
        ("20240310", "141500", "ACC0002", "MR BRAIN", "1002",
         [("MR", "T1", 2)]),
    ]),
    _patient(2, "DK0002", "MÜLLER^Hans", "19851224", "M", "ISO_IR 100", [
        ("20240212", "081000", "ACC0003", "CT ABDOMEN", "2001",
         [("CT", "AXIAL", 1), ("OT", "SCREENSHOT", 1)]),
    ]),
    _patient(3, "DK0003", "SMITH^JANE", "19921130", "F", None, [
        ("20231120", "160000", "ACC0004", "MR KNEE", "3001",
         [("MR", "T2", 1)]),
    ]),
)
#: Every sample study, in :data:`SAMPLE_PATIENTS` order.
SAMPLE_STUDIES: tuple[SampleStudy, ...] = tuple(st for p in SAMPLE_PATIENTS for st in p.studies)
#: Every sample series, in :data:`SAMPLE_PATIENTS` order.
SAMPLE_SERIES: tuple[SampleSeries, ...] = tuple(se for st in SAMPLE_STUDIES for se in st.series)
#: Every sample image, in :data:`SAMPLE_PATIENTS` order.
SAMPLE_IMAGES: tuple[SampleImage, ...] = tuple(im for se in SAMPLE_SERIES for im in se.images)


def make_sample_instances(directory: Path | str) -> list[Path]:
    """Write the :data:`SAMPLE_PATIENTS` instances as Part-10 files into *directory*.

    Deterministic (same bytes every time): fixed UIDs, explicit VR little endian,
    8x8 8-bit MONOCHROME2 pixels. Returns the paths, sorted; each file is named
    ``<SOPInstanceUID>.dcm``.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for patient in SAMPLE_PATIENTS:
        for study in patient.studies:
            for series in study.series:
                for image in series.images:
                    meta = FileMetaDataset()
                    meta.MediaStorageSOPClassUID = image.sop_class_uid
                    meta.MediaStorageSOPInstanceUID = image.sop_instance_uid
                    meta.TransferSyntaxUID = ExplicitVRLittleEndian
                    meta.ImplementationClassUID = f"{SAMPLE_UID_ROOT}.0.1"
                    meta.ImplementationVersionName = "DIMSEKIT_TEST"

                    ds = Dataset()
                    ds.file_meta = meta
                    if patient.specific_character_set:
                        ds.SpecificCharacterSet = patient.specific_character_set
                    ds.SOPClassUID = image.sop_class_uid
                    ds.SOPInstanceUID = image.sop_instance_uid
                    ds.StudyDate = study.study_date
                    ds.SeriesDate = study.study_date
                    ds.StudyTime = study.study_time
                    ds.SeriesTime = study.study_time
                    ds.AccessionNumber = study.accession_number
                    ds.Modality = series.modality
                    ds.ReferringPhysicianName = ""
                    ds.StudyDescription = study.study_description
                    ds.SeriesDescription = series.series_description
                    ds.PatientName = patient.patient_name
                    ds.PatientID = patient.patient_id
                    ds.PatientBirthDate = patient.patient_birth_date
                    ds.PatientSex = patient.patient_sex
                    ds.StudyInstanceUID = study.study_instance_uid
                    ds.SeriesInstanceUID = series.series_instance_uid
                    ds.StudyID = study.study_id
                    ds.SeriesNumber = series.series_number
                    ds.InstanceNumber = image.instance_number
                    ds.SamplesPerPixel = 1
                    ds.PhotometricInterpretation = "MONOCHROME2"
                    ds.Rows = 8
                    ds.Columns = 8
                    ds.BitsAllocated = 8
                    ds.BitsStored = 8
                    ds.HighBit = 7
                    ds.PixelRepresentation = 0
                    ds.PixelData = bytes((x * 8 + image.instance_number) % 256 for x in range(64))

                    path = directory / f"{image.sop_instance_uid}.dcm"
                    ds.save_as(path, enforce_file_format=True)
                    paths.append(path)
    return sorted(paths)


# --------------------------------------------------------------------------
# running DCMTK findscu (for smoke tests, and handy for others)
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class FindscuResult:
    """Outcome of one DCMTK ``findscu`` run.

    Attributes:
        returncode: findscu's exit status (0 even on failure statuses, see FIELD-NOTES).
        responses: the ``rsp*.dcm`` files ``-X`` wrote, one per pending response.
        stderr: findscu's log (DCMTK logs to stderr).
    """

    returncode: int
    responses: tuple[Path, ...]
    stderr: str

    @property
    def count(self) -> int:
        """Number of matches received."""
        return len(self.responses)

    def datasets(self) -> list:
        """The responses read with pydicom, in arrival order."""
        import pydicom

        return [pydicom.dcmread(p) for p in self.responses]


def run_findscu(
    peer: DicomPeer,
    out_dir: Path,
    *args: str,
    query_file: Path | None = None,
    timeout: float = 30.0,
    input: str | None = None,
) -> FindscuResult:
    """Run DCMTK ``findscu -X -od OUT_DIR -aec peer.aet ARGS HOST PORT [QUERY_FILE]``.

    *args* are findscu options, e.g. ``"-S", "-k", "QueryRetrieveLevel=STUDY"``.
    *peer* needs only ``host``, ``port`` and ``aet``; *input* is given on
    stdin (default: none, stdin is ``/dev/null``).
    *out_dir* must be new or empty (it is created); the responses are counted
    from the files written there, which is robust against findscu's gaps in
    its response numbering.
    """
    findscu = require_binary("findscu")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} is not empty")
    argv = [findscu, "-X", "-od", str(out_dir), "-aec", peer.aet, *args, peer.host, str(peer.port)]
    if query_file is not None:
        argv.append(str(query_file))
    proc = subprocess.run(
        argv, capture_output=True, text=True, errors="replace", timeout=timeout,
        check=False, env=_env(),
        # *input*: what findscu reads on stdin (e.g. a +ps password)
        **({"stdin": subprocess.DEVNULL} if input is None else {"input": input}),
    )
    responses = tuple(sorted(out_dir.glob("rsp*.dcm")))
    return FindscuResult(proc.returncode, responses, proc.stdout + proc.stderr)


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sample_instances(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:
    """The sample Part-10 files (see :data:`SAMPLE_PATIENTS`), written once."""
    return tuple(make_sample_instances(tmp_path_factory.mktemp("sample-instances")))


@pytest.fixture(scope="session")
def worklist_queries(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:
    """DCMTK's 13 example worklist queries as ``wlistqry0.dcm`` .. ``wlistqry12.dcm``.

    Sorted in numeric order, so ``worklist_queries[n]`` is ``wlistqry<n>.dcm``.
    """
    dumps = _example_dumps("wlistqry/wlistqry*.dump", minimum=13)
    return _dump2dcm_all(dumps, tmp_path_factory.mktemp("worklist-queries"), ".dcm")


@pytest.fixture(scope="session")
def wlmscpfs_peer(
    tmp_path_factory: pytest.TempPathFactory, worklist_queries: tuple[Path, ...]
) -> Iterator[WorklistPeer]:
    """DCMTK ``wlmscpfs`` serving DCMTK's example worklist (called AE ``OFFIS``).

    The ``wlistdb/OFFIS/*.dump`` examples are converted into
    ``<workdir>/db/OFFIS/*.wl`` with a ``lockfile``; the peer runs
    ``wlmscpfs -dfp <workdir>/db <port>``.
    """
    binary = require_binary("wlmscpfs")
    aet = "OFFIS"
    workdir = tmp_path_factory.mktemp("wlmscpfs")
    db_dir = workdir / "db"
    worklist_dir = db_dir / aet
    wl_files = _dump2dcm_all(_example_dumps("wlistdb/OFFIS/*.dump", minimum=1), worklist_dir, ".wl")
    (worklist_dir / "lockfile").touch()
    port = free_port()
    with _running_peer(
        "wlmscpfs",
        [binary, "-dfp", str(db_dir), str(port)],
        workdir=workdir,
        is_ready=_dicom_echo_ready(port, aet),
    ) as (proc, log_path):
        yield WorklistPeer(
            name="wlmscpfs", host=LOOPBACK, port=port, aet=aet, workdir=workdir,
            log_path=log_path, pid=proc.pid, worklist_dir=worklist_dir,
            worklist_files=wl_files, queries=worklist_queries,
        )


_DCMQRSCP_CONFIG = """\
# dcmqrscp configuration written by tests/realpeers.py
NetworkTCPPort  = {port}
MaxPDUSize      = 16384
MaxAssociations = 16

HostTable BEGIN
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
# AETitle  StorageArea  Access  Quota  Peers
{aet}  {storage}  RW  (100, 1024mb)  ANY
AETable END
"""


@pytest.fixture(scope="session")
def dcmqrscp_peer(
    tmp_path_factory: pytest.TempPathFactory, sample_instances: tuple[Path, ...]
) -> Iterator[ArchivePeer]:
    """DCMTK ``dcmqrscp`` (called AE ``DCMQRSCP``) holding the sample instances.

    Runs ``dcmqrscp -c <workdir>/dcmqrscp.cfg <port>``; the sample instances are
    sent with ``storescu`` before the fixture yields. Supports C-FIND in the
    Patient Root and Study Root models at every level.
    """
    binary = require_binary("dcmqrscp")
    aet = "DCMQRSCP"
    workdir = tmp_path_factory.mktemp("dcmqrscp")
    storage = workdir / "storage"
    storage.mkdir()
    port = free_port()
    config = workdir / "dcmqrscp.cfg"
    config.write_text(_DCMQRSCP_CONFIG.format(port=port, aet=aet, storage=storage))
    with _running_peer(
        "dcmqrscp",
        [binary, "-c", str(config), str(port)],
        workdir=workdir,
        is_ready=_dicom_echo_ready(port, aet),
    ) as (proc, log_path):
        _store_with_storescu(port, aet, sample_instances)
        yield ArchivePeer(
            name="dcmqrscp", host=LOOPBACK, port=port, aet=aet, workdir=workdir,
            log_path=log_path, pid=proc.pid, instances=sample_instances,
            patients=SAMPLE_PATIENTS,
        )


def _orthanc_config(workdir: Path, aet: str, dicom_port: int, http_port: int) -> dict:
    """A quiet, fast, loopback-only Orthanc 1.10 configuration."""
    return {
        "Name": "dimsekit-test",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
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
        "HttpThreadsCount": 4,
        "DicomServerEnabled": True,
        "DicomAet": aet,
        "DicomPort": dicom_port,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowFindWorklist": True,
        "DicomAlwaysAllowStore": True,
        "DicomModalities": {},
        "DicomThreadsCount": 4,
        "ConcurrentJobs": 1,
        "SaveJobs": False,
        "JobsHistorySize": 1,
        "StableAge": 1,
    }


def _post_instances(base_url: str, files: Sequence[Path]) -> None:
    """Upload Part-10 files through Orthanc's REST API (``POST /instances``)."""
    for path in files:
        request = urllib.request.Request(
            f"{base_url}/instances", data=path.read_bytes(), method="POST",
            headers={"Content-Type": "application/dicom"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            status = json.load(response).get("Status")
        if status not in ("Success", "AlreadyStored"):
            raise RuntimeError(f"Orthanc refused {path}: {status}")


def _orthanc(tmp_path_factory: pytest.TempPathFactory, sample_instances: tuple[Path, ...],
             name: str, extra: dict) -> Iterator[OrthancPeer]:
    """Start Orthanc with the test config plus ``extra`` settings, upload the
    sample instances through its REST API, yield it, stop it."""
    binary = require_binary("Orthanc")
    aet = "ORTHANC"
    workdir = tmp_path_factory.mktemp(name)
    dicom_port, http_port = free_port(), free_port()
    while http_port == dicom_port:
        http_port = free_port()
    config = workdir / "orthanc.json"
    settings = {**_orthanc_config(workdir, aet, dicom_port, http_port), **extra}
    config.write_text(json.dumps(settings, indent=2))
    base_url = f"http://{LOOPBACK}:{http_port}"
    with _running_peer(
        "orthanc",
        [binary, str(config)],
        workdir=workdir,
        # with TLS, the TCP probe costs Orthanc one failed-handshake log line
        is_ready=_http_ready(f"{base_url}/system", also_tcp_port=dicom_port),
    ) as (proc, log_path):
        _post_instances(base_url, sample_instances)
        yield OrthancPeer(
            name=name, host=LOOPBACK, port=dicom_port, aet=aet, workdir=workdir,
            log_path=log_path, pid=proc.pid, instances=sample_instances,
            patients=SAMPLE_PATIENTS, http_port=http_port, config_path=config,
        )


@pytest.fixture(scope="session")
def orthanc_peer(
    tmp_path_factory: pytest.TempPathFactory, sample_instances: tuple[Path, ...]
) -> Iterator[OrthancPeer]:
    """Orthanc (called AE ``ORTHANC``) holding the sample instances.

    Started as ``Orthanc <workdir>/orthanc.json``; ready when ``GET /system``
    answers; the sample instances are uploaded with ``POST /instances`` before
    the fixture yields. C-FIND and worklist C-FIND are allowed from any AE and
    the called AE title is not checked.
    """
    yield from _orthanc(tmp_path_factory, sample_instances, "orthanc", {})


# --------------------------------------------------------------------------
# TLS: certificates made at test time, and Orthanc speaking DICOM over TLS
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSMaterial:
    """Keys and certificates for TLS tests, all RSA (DCMTK 3.6.7's default
    TLS profile offers RSA suites first), PEM unless named ``*_der``.

    Attributes:
        directory: where the files are.
        ca_cert: the CA that signed every certificate below.
        other_ca_cert: a second CA that signed nothing here (untrusted).
        server_cert, server_key: for ``127.0.0.1`` and ``localhost``.
        wrong_host_cert, wrong_host_key: for ``pacs.example.org`` only.
        client_cert, client_key: a client certificate (not a host name).
        untrusted_client_cert, untrusted_client_key: one signed by the other CA.
        client_key_encrypted: ``client_key`` encrypted with :attr:`password`.
        password: the password of ``client_key_encrypted``.
        client_cert_der, client_key_der, ca_cert_der: DER copies.
        ca_dir: a directory holding ``ca_cert`` under OpenSSL's hashed name
            (``<subject hash>.0``, what DCMTK's ``+cd`` needs), or None when
            no ``openssl`` binary was found to compute the hash.
        ca_dir_plain: a directory holding ``ca_cert`` as ``ca.pem``.
    """

    directory: Path
    ca_cert: Path
    other_ca_cert: Path
    server_cert: Path
    server_key: Path
    wrong_host_cert: Path
    wrong_host_key: Path
    client_cert: Path
    client_key: Path
    untrusted_client_cert: Path
    untrusted_client_key: Path
    client_key_encrypted: Path
    password: str
    client_cert_der: Path
    client_key_der: Path
    ca_cert_der: Path
    ca_dir: Path | None
    ca_dir_plain: Path


def make_tls_material(directory: Path | str, password: str = "dimsekit-Pa55") -> TLSMaterial:
    """Write a fresh :class:`TLSMaterial` into *directory* (needs ``trustme``)."""
    import trustme
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rsa = trustme.KeyType.RSA
    ca = trustme.CA(key_type=rsa, organization_name="dimsekit test CA")
    other = trustme.CA(key_type=rsa, organization_name="dimsekit untrusted CA")

    def write(name: str, blob) -> Path:
        path = directory / name
        blob.write_to_path(str(path))
        return path

    def issue(stem: str, *identities: str, by=ca) -> tuple[Path, Path]:
        cert = by.issue_cert(*identities, key_type=rsa)
        return (write(f"{stem}.pem", cert.cert_chain_pems[0]),
                write(f"{stem}.key", cert.private_key_pem))

    ca_cert = write("ca.pem", ca.cert_pem)
    other_ca_cert = write("other-ca.pem", other.cert_pem)
    server_cert, server_key = issue("server", "127.0.0.1", "localhost")
    wrong_cert, wrong_key = issue("wrong-host", "pacs.example.org")
    client_cert, client_key = issue("client", "findscu@dimsekit.test")
    untrusted_cert, untrusted_key = issue("untrusted-client", "findscu@dimsekit.test",
                                          by=other)

    key = serialization.load_pem_private_key(client_key.read_bytes(), None)
    encrypted = directory / "client-encrypted.key"
    encrypted.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password.encode())))
    client_key_der = directory / "client.key.der"
    client_key_der.write_bytes(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    client_cert_der = directory / "client.pem.der"
    client_cert_der.write_bytes(x509.load_pem_x509_certificate(
        client_cert.read_bytes()).public_bytes(serialization.Encoding.DER))
    ca_cert_der = directory / "ca.der"
    ca_cert_der.write_bytes(x509.load_pem_x509_certificate(
        ca_cert.read_bytes()).public_bytes(serialization.Encoding.DER))

    ca_dir_plain = directory / "ca-dir-plain"
    ca_dir_plain.mkdir(exist_ok=True)
    shutil.copy(ca_cert, ca_dir_plain / "ca.pem")
    ca_dir: Path | None = None
    openssl = shutil.which("openssl")
    if openssl:
        subject_hash = _run_tool([openssl, "x509", "-hash", "-noout", "-in",
                                  str(ca_cert)]).stdout.strip()
        ca_dir = directory / "ca-dir"
        ca_dir.mkdir(exist_ok=True)
        shutil.copy(ca_cert, ca_dir / f"{subject_hash}.0")

    return TLSMaterial(
        directory=directory, ca_cert=ca_cert, other_ca_cert=other_ca_cert,
        server_cert=server_cert, server_key=server_key,
        wrong_host_cert=wrong_cert, wrong_host_key=wrong_key,
        client_cert=client_cert, client_key=client_key,
        untrusted_client_cert=untrusted_cert, untrusted_client_key=untrusted_key,
        client_key_encrypted=encrypted, password=password,
        client_cert_der=client_cert_der, client_key_der=client_key_der,
        ca_cert_der=ca_cert_der, ca_dir=ca_dir, ca_dir_plain=ca_dir_plain,
    )


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    """Fresh certificates and keys for this session (see :class:`TLSMaterial`)."""
    try:
        import trustme  # noqa: F401
    except ImportError:
        _missing("trustme is not installed (pip install -e '.[test]')")
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def orthanc_tls_peer(
    tmp_path_factory: pytest.TempPathFactory,
    sample_instances: tuple[Path, ...],
    tls_material: TLSMaterial,
) -> Iterator[OrthancPeer]:
    """Orthanc (called AE ``ORTHANC``) speaking DICOM over TLS only.

    Its certificate is :attr:`TLSMaterial.server_cert` (127.0.0.1 and
    localhost; Orthanc binds every address, so ``127.0.0.2`` reaches it under
    a name its certificate does not hold); it trusts
    :attr:`TLSMaterial.ca_cert` and requires a client certificate
    (``DicomTlsRemoteCertificateRequired``). Its REST API (plain HTTP,
    loopback) is ready when ``GET /system`` answers; the sample instances are
    uploaded through it. Orthanc 1.10 takes the settings as DCMTK 3.6.7 does:
    TLS 1.2 and 1.3, the CA chain sent along with its certificate.
    """
    yield from _orthanc(tmp_path_factory, sample_instances, "orthanc-tls", {
        "DicomTlsEnabled": True,
        "DicomTlsCertificate": str(tls_material.server_cert),
        "DicomTlsPrivateKey": str(tls_material.server_key),
        "DicomTlsTrustedCertificates": str(tls_material.ca_cert),
        "DicomTlsRemoteCertificateRequired": True,
    })
