"""Testing support: an in-process recording DICOM query peer and sample data.

Used by the README demo (``python -m dimsekit.demo``), by dimsekit's own test
suite, and by third-party plugin authors' tests::

    from dimsekit.testing import QuerySCP

    with QuerySCP(ae_title="ANY-SCP") as scp:
        ...  # talk to 127.0.0.1:scp.port
        scp.requests[-1].identifier  # what the SCU sent

Importing this package imports pynetdicom and pydicom.
"""

from dimsekit.testing import sampledata
from dimsekit.testing.sampledata import SampleData, sample_data
from dimsekit.testing.scp import (
    MODEL_UIDS,
    TRANSFER_SYNTAXES,
    AssociationRecord,
    CancelRecord,
    ContextRecord,
    FindRecord,
    QuerySCP,
)

__all__ = [
    "QuerySCP",
    "SampleData",
    "sample_data",
    "sampledata",
    "FindRecord",
    "AssociationRecord",
    "CancelRecord",
    "ContextRecord",
    "MODEL_UIDS",
    "TRANSFER_SYNTAXES",
]
