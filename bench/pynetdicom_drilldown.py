"""Case 6's pynetdicom reference: a STUDY-to-SERIES drill-down on one association.

What a user writes with pynetdicom's library: one Study Root C-FIND at STUDY
level (universal StudyInstanceUID), then, on the same association, one
SERIES-level C-FIND per study found, sent one after the other with
``assoc.send_c_find``.  pynetdicom's defaults throughout (it does not set
TCP_NODELAY).  The identifiers are collected, not printed; the script prints
one line: ``studies=N series=M``, and exits 1 when a status is not success
or pending.

Usage (by bench_find.py, case 6)::

    python bench/pynetdicom_drilldown.py HOST PORT CALLED_AET
"""

from __future__ import annotations

import sys

from pydicom import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as STUDY_ROOT

PENDING = (0xFF00, 0xFF01)
SERIES_KEYS = ("SeriesInstanceUID", "Modality", "SeriesNumber", "SeriesDescription")


def find(assoc, query: Dataset) -> list[Dataset]:
    found = []
    for status, identifier in assoc.send_c_find(query, STUDY_ROOT):
        if not status or status.Status not in (*PENDING, 0x0000):
            raise SystemExit(f"C-FIND failed: {status}")
        if status.Status in PENDING:
            found.append(identifier)
    return found


def main() -> int:
    host, port, aet = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ae = AE(ae_title="FINDSCU")
    ae.add_requested_context(STUDY_ROOT)
    assoc = ae.associate(host, port, ae_title=aet)
    if not assoc.is_established:
        print("association not established", file=sys.stderr)
        return 2
    try:
        study_query = Dataset()
        study_query.QueryRetrieveLevel = "STUDY"
        study_query.StudyInstanceUID = ""
        studies = find(assoc, study_query)
        series = []
        for study in studies:
            query = Dataset()
            query.QueryRetrieveLevel = "SERIES"
            # Orthanc pads an odd-length UID with NUL; pydicom keeps it
            query.StudyInstanceUID = str(study.StudyInstanceUID).rstrip("\0 ")
            for key in SERIES_KEYS:
                setattr(query, key, "")
            series.extend(find(assoc, query))
    finally:
        assoc.release()
    print(f"studies={len(studies)} series={len(series)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
