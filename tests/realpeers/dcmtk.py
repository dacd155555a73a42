"""DCMTK peers and tools: ``wlmscpfs``, ``dcmqrscp``, ``findscu`` and friends.

``wlmscpfs_peer`` serves DCMTK's example worklist, with DCMTK's example
queries (``worklist_queries``) converted for it; ``dcmqrscp_peer`` holds the
sample instances. Both are ready when a DCMTK ``echoscu`` to them succeeds.
:func:`run_findscu` runs DCMTK ``findscu`` against any peer (the reference
the tests compare ``dimsekit find`` with).

Binding: DCMTK 3.6.7 has no option for the listen address; wlmscpfs and
dcmqrscp bind 0.0.0.0 on the chosen port. Clients only ever connect to
127.0.0.1.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from .processes import (
    LOOPBACK,
    ArchivePeer,
    DicomPeer,
    _env,
    _missing,
    _run_tool,
    _running_peer,
    free_port,
    require_binary,
)
from .samples import SAMPLE_PATIENTS

__all__ = [
    "FindscuResult",
    "WorklistPeer",
    "dcmqrscp_peer",
    "run_findscu",
    "wlmscpfs_peer",
    "worklist_queries",
]

_DCMTK_EXAMPLES = Path("/usr/share/doc/dcmtk/examples")

# --------------------------------------------------------------------------
# DCMTK tools
# --------------------------------------------------------------------------


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


def _store_with_storescu(port: int, called_aet: str, files: Sequence[Path]) -> None:
    """Send *files* to a peer with DCMTK ``storescu`` over one association."""
    storescu = require_binary("storescu")
    _run_tool([storescu, "-aec", called_aet, LOOPBACK, str(port), *map(str, files)])

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
# peers
# --------------------------------------------------------------------------


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
# dcmqrscp configuration written by tests/realpeers/dcmtk.py
NetworkTCPPort  = {port}
MaxPDUSize      = 16384
MaxAssociations = 16

HostTable BEGIN
{hosts}
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
    tmp_path_factory: pytest.TempPathFactory, sample_instances: tuple[Path, ...],
    move_destinations: dict[str, int],
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
    hosts = "\n".join(f"{name.lower()} = ({name}, {LOOPBACK}, {dest})"
                      for name, dest in move_destinations.items())
    config.write_text(_DCMQRSCP_CONFIG.format(port=port, aet=aet, storage=storage,
                                              hosts=hosts))
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
