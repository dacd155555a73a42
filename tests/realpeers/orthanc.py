"""Orthanc peers: ``orthanc_peer`` (plain DICOM) and ``orthanc_tls_peer``.

Each holds the sample instances (uploaded through its REST API, which is
ready when ``GET /system`` answers) in its own working directory, with a
quiet, loopback-only configuration. Orthanc 1.10 has no option for the
DICOM listen address and binds 0.0.0.0; its REST API refuses non-local
clients (``RemoteAccessAllowed: false``).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from .processes import (
    LOOPBACK,
    ArchivePeer,
    _http_ready,
    _running_peer,
    free_port,
    require_binary,
)
from .samples import SAMPLE_PATIENTS
from .tls import TLSMaterial

__all__ = ["ORTHANC_CAP", "OrthancPeer", "orthanc_capped_peer", "orthanc_peer",
           "orthanc_tls_peer"]


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
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
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
             name: str, extra: dict,
             move_destinations: dict[str, int] | None = None) -> Iterator[OrthancPeer]:
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
    if move_destinations:
        settings["DicomModalities"] = {name.lower(): [name, LOOPBACK, dest]
                                       for name, dest in move_destinations.items()}
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
    tmp_path_factory: pytest.TempPathFactory, sample_instances: tuple[Path, ...],
    move_destinations: dict[str, int],
) -> Iterator[OrthancPeer]:
    """Orthanc (called AE ``ORTHANC``) holding the sample instances.

    Started as ``Orthanc <workdir>/orthanc.json``; ready when ``GET /system``
    answers; the sample instances are uploaded with ``POST /instances`` before
    the fixture yields. C-FIND and worklist C-FIND are allowed from any AE and
    the called AE title is not checked; C-GET is allowed, and C-MOVE to the
    AE titles of ``move_destinations``.
    """
    yield from _orthanc(tmp_path_factory, sample_instances, "orthanc", {},
                        move_destinations)


#: the ``LimitFindResults`` of :func:`orthanc_capped_peer`
ORTHANC_CAP = 2


@pytest.fixture(scope="session")
def orthanc_capped_peer(
    tmp_path_factory: pytest.TempPathFactory, sample_instances: tuple[Path, ...]
) -> Iterator[OrthancPeer]:
    """Orthanc holding the sample instances with a result cap
    (``LimitFindResults``: :data:`ORTHANC_CAP`): a C-FIND with more matches
    gets that many pending responses and a final 0xFE00 (Cancel) nobody
    asked for -- how a capped result looks on the wire."""
    yield from _orthanc(tmp_path_factory, sample_instances, "orthanc-capped",
                        {"LimitFindResults": ORTHANC_CAP})


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
