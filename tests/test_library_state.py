"""A find run through the library leaves the process as it found it: the
CLI may tune its own process (gc.freeze, pydicom's validation, logging,
warnings), the library may not (issue "A library under the CLI")."""

from __future__ import annotations

import gc
import json
import logging
import warnings

from pydicom import config

from dimsekit.api import AssociationSettings, Host
from dimsekit.plugins.find.run import FindRequest, run_find


def _state() -> dict:
    return {
        "gc frozen": gc.get_freeze_count(),
        "reading validation": config.settings.reading_validation_mode,
        "writing validation": config.settings.writing_validation_mode,
        "warnings filters": list(warnings.filters),
        "loggers": {name: (logging.getLogger(name).propagate,
                           list(logging.getLogger(name).handlers),
                           logging.getLogger(name).level)
                    for name in ("", "dimsekit", "pynetdicom", "pydicom")},
    }


def test_a_find_run_changes_no_process_wide_state(make_scp, tmp_path):
    scp = make_scp(repeat_matches=3)
    host = Host()
    host.load_entry_points()
    before = _state()
    for _ in range(3):
        request = FindRequest.from_cli(
            host=host, query_files=[], peer="127.0.0.1", port=scp.port,
            association=AssociationSettings(called_aet="ANY-SCP"),
            keys=("QueryRetrieveLevel=STUDY", "PatientName=", "PatientComments=Ä"),
            level=None, model=None, repeat=1, cancel=None, fmt="json",
            output=str(tmp_path / "out.json"), extract=False, output_directory=str(tmp_path))
        assert run_find(request) == 0
        assert len(json.loads((tmp_path / "out.json").read_text())) == 3
    assert _state() == before
