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
``orthanc_capped_peer``
    :class:`OrthancPeer`: Orthanc holding the sample instances with
    ``LimitFindResults`` set to :data:`ORTHANC_CAP` (a result cap).
``orthanc_tls_peer``
    :class:`OrthancPeer`: a second Orthanc holding the sample instances that
    speaks DICOM over TLS only, with :attr:`TLSMaterial.server_cert`, trusting
    :attr:`TLSMaterial.ca_cert` and requiring a client certificate.

Helpers: :func:`require_binary`, :func:`free_port`, :func:`make_sample_instances`,
:func:`run_findscu` (DCMTK findscu as a subprocess, responses counted from
``-X`` output), and the sample-data description :data:`SAMPLE_PATIENTS`,
:data:`SAMPLE_STUDIES`, :data:`SAMPLE_SERIES`, :data:`SAMPLE_IMAGES`.

The package, one part each (this module only re-exports them):

``processes``
    starting, probing and stopping peer processes; binaries, free ports;
    :class:`DicomPeer`, :class:`ArchivePeer`.
``samples``
    the sample data the archives hold, written as Part-10 files.
``dcmtk``
    ``wlmscpfs`` and ``dcmqrscp`` peers, DCMTK's example worklist, ``findscu``.
``orthanc``
    the plain and the TLS Orthanc peers.
``tls``
    keys and certificates made at test time.

PYTEST_DONT_REWRITE: this package has no asserts; the marker keeps pytest from
warning when a test module also lists it in ``pytest_plugins`` after a
conftest imported it.
"""

from __future__ import annotations

from .dcmtk import (
    FindscuResult,
    WorklistPeer,
    dcmqrscp_peer,
    run_findscu,
    wlmscpfs_peer,
    worklist_queries,
)
from .orthanc import (
    ORTHANC_CAP,
    OrthancPeer,
    orthanc_capped_peer,
    orthanc_peer,
    orthanc_tls_peer,
)
from .processes import (
    LOOPBACK,
    MOVE_DESTINATION_AETS,
    READY_TIMEOUT,
    SPAWN_ENV,
    STOP_GRACE,
    ArchivePeer,
    DicomPeer,
    _running_peer,  # noqa: F401 - tests drive the process runner directly
    free_port,
    move_destinations,
    require_binary,
)
from .samples import (
    SAMPLE_IMAGES,
    SAMPLE_PATIENTS,
    SAMPLE_SERIES,
    SAMPLE_STUDIES,
    SAMPLE_UID_ROOT,
    SampleImage,
    SamplePatient,
    SampleSeries,
    SampleStudy,
    make_sample_instances,
    sample_instances,
)
from .tls import TLSMaterial, make_tls_material, tls_material

# what `from realpeers import *` gives a conftest: every part's __all__
__all__ = [
    "LOOPBACK",
    "MOVE_DESTINATION_AETS",
    "READY_TIMEOUT",
    "SAMPLE_IMAGES",
    "SAMPLE_PATIENTS",
    "SAMPLE_SERIES",
    "SAMPLE_STUDIES",
    "SAMPLE_UID_ROOT",
    "SPAWN_ENV",
    "STOP_GRACE",
    "ArchivePeer",
    "DicomPeer",
    "FindscuResult",
    "OrthancPeer",
    "SampleImage",
    "SamplePatient",
    "SampleSeries",
    "SampleStudy",
    "TLSMaterial",
    "WorklistPeer",
    "dcmqrscp_peer",
    "free_port",
    "make_sample_instances",
    "make_tls_material",
    "move_destinations",
    "ORTHANC_CAP",
    "orthanc_capped_peer",
    "orthanc_peer",
    "orthanc_tls_peer",
    "require_binary",
    "run_findscu",
    "sample_instances",
    "tls_material",
    "wlmscpfs_peer",
    "worklist_queries",
]
