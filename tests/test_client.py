"""The Python API (dimsekit.Peer, Session, Results) against real peers: the
in-process recording SCP, the raw-socket hostile peer, and (in
test_docs) DCMTK dcmqrscp through the examples of docs/python-api.md."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from pydicom import Dataset

import dimsekit
from dimsekit.testing import QuerySCP

STUDY = {"QueryRetrieveLevel": "STUDY", "PatientName": "", "StudyInstanceUID": ""}


def _study_uids(scp: QuerySCP) -> set[str]:
    return {r.StudyInstanceUID for r in scp.data.instances}


def _accessions(scp: QuerySCP) -> list[str]:
    return sorted({r.AccessionNumber for r in scp.data.instances})


def test_find_yields_every_match_as_datasets(scp):
    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    found = list(pacs.find(STUDY))
    assert found and all(isinstance(ds, Dataset) for ds in found)
    assert {ds.StudyInstanceUID for ds in found} == _study_uids(scp)
    (assoc,) = scp.associations
    assert assoc.calling_ae == "DIMSEKIT" and assoc.called_ae == "ANY-SCP"
    # its own association: only the inferred model was proposed
    assert [c.abstract_syntax for c in assoc.requested_contexts] == [
        "1.2.840.10008.5.1.4.1.2.2.1"]
    assert assoc.ended == "released"


def test_query_as_keywords_dataset_and_paths(scp):
    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    by_keywords = list(pacs.find(QueryRetrieveLevel="STUDY", PatientName="", StudyInstanceUID=""))
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.PatientName = ""
    ds.StudyInstanceUID = ""
    by_dataset = list(pacs.find(ds))
    assert "SpecificCharacterSet" not in ds  # the caller's dataset is left alone
    assert sorted(d.StudyInstanceUID for d in by_keywords) == \
        sorted(d.StudyInstanceUID for d in by_dataset)
    worklist = list(pacs.find({"PatientName": "", "(0040,0100)[0].Modality": "CT"}))
    sent = scp.requests[-1]
    assert sent.model == "worklist"
    assert sent.identifier.ScheduledProcedureStepSequence[0].Modality == "CT"
    assert all(item.Modality == "CT" for ds in worklist
               for item in ds.ScheduledProcedureStepSequence)


def test_model_given_and_non_ascii_text_gets_a_charset(scp):
    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    list(pacs.find({"QueryRetrieveLevel": "PATIENT", "PatientName": "Müller*", "PatientID": ""},
                    model="patient"))
    sent = scp.requests[-1]
    assert sent.model == "patient"
    assert sent.identifier.SpecificCharacterSet == "ISO_IR 100"
    assert str(sent.identifier.PatientName) == "Müller*"


def test_session_keeps_one_association_for_many_requests(scp):
    pacs = dimsekit.Peer("127.0.0.1", scp.port, calling_aet="SCRIPT")
    accessions = _accessions(scp)
    with pacs.connect() as session:
        session.echo()
        found = {}
        for accession in accessions:
            for ds in session.find(QueryRetrieveLevel="STUDY", AccessionNumber=accession,
                                   StudyInstanceUID=""):
                found[accession] = ds.StudyInstanceUID
    assert len(scp.associations) == 1
    assert len(scp.requests) == len(accessions) and len(scp.echoes) == 1
    assert [r.message_id for r in scp.requests] == list(range(2, len(accessions) + 2))
    assert set(found.values()) == _study_uids(scp)
    assert scp.associations[0].ended == "released"


def test_leaving_the_loop_cancels_and_the_session_goes_on(make_scp):
    scp = make_scp(repeat_matches=50, response_delay=0.01, honour_cancel=True)
    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    with pacs.connect() as session:
        results = session.find(STUDY)
        for n, _ in enumerate(results, 1):
            if n == 3:
                break
        results.close()
        assert results.status == 0xFE00
        assert session.is_open
        # the next request on the same association gets all its responses
        assert len(list(session.find(STUDY))) == 50
    assert len(scp.associations) == 1 and len(scp.cancels) == 1
    assert scp.associations[0].ended == "released"


def test_a_peer_that_ignores_cancel_is_aborted(make_scp):
    scp = make_scp(hang_after=2)
    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    with pacs.connect() as session:
        results = session.find(STUDY)
        next(results)
        results.close()  # C-CANCEL, the grace, then abort
        assert not session.is_open
        with pytest.raises(dimsekit.AssociationError, match="not open"):
            list(session.find(STUDY))
    assert scp.associations[0].ended == "aborted"


def test_failure_status_raises_peer_failure_after_the_matches(make_scp):
    scp = make_scp(final_status=0xC001)
    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    got = []
    with pacs.connect() as session:
        with pytest.raises(dimsekit.PeerFailure) as info:
            for ds in session.find(STUDY):
                got.append(ds)
        assert info.value.status == 0xC001
        assert info.value.exit_code == 1
        assert len(got) == len(_study_uids(scp))
        assert session.is_open  # a failure status leaves the association as it was
        session.echo()


def test_abort_mid_query_raises_incomplete_with_the_count(make_scp):
    scp = make_scp(repeat_matches=10, abort_after=4)
    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    got = []
    with pytest.raises(dimsekit.IncompleteError) as info:
        for ds in pacs.find(STUDY):
            got.append(ds)
    assert len(got) == 4 and info.value.received == 4
    assert "results may be incomplete" in str(info.value)


def test_bad_query_is_a_usage_error_before_the_network(scp):
    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    with pytest.raises(dimsekit.UsageError, match="PatientNam"):
        pacs.find({"PatientNam": "x"})
    with pytest.raises(dimsekit.UsageError, match="model"):
        pacs.find(STUDY, model="nonsense")
    with pytest.raises(dimsekit.UsageError):
        pacs.find(["PatientName"])
    with pytest.raises(dimsekit.UsageError, match="AE title"):
        dimsekit.Peer("127.0.0.1", scp.port, called_aet="X" * 17)
    assert scp.associations == []


def test_no_association_raises_association_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: refused
    pacs = dimsekit.Peer("127.0.0.1", port, connect_timeout=5)
    with pytest.raises(dimsekit.AssociationError, match="cannot connect") as info:
        list(pacs.find(STUDY))
    assert info.value.exit_code == 3
    with pytest.raises(dimsekit.AssociationError):
        pacs.echo()


def test_echo_failure_status(make_scp):
    scp = make_scp(echo_status=0x0211)
    with pytest.raises(dimsekit.PeerFailure) as info:
        dimsekit.Peer("127.0.0.1", scp.port).echo()
    assert info.value.status == 0x0211


def test_two_threads_two_sessions_side_by_side(make_scp):
    scp = make_scp(repeat_matches=200)
    pacs = dimsekit.Peer("127.0.0.1", scp.port)
    counts: dict[str, int] = {}
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with pacs.connect(models=("study",), echo=False) as session:
                counts[name] = sum(len(list(session.find(STUDY))) for _ in range(5))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and counts == {"a": 1000, "b": 1000}
    assert len(scp.associations) == 2


def test_a_script_loops_over_thousands_of_queries_with_flat_memory(scp, tmp_path):
    """Run as a script does, in its own process (the recording peer stays
    in this one): 3,000 queries on one association; memory after the last
    is what it was after the first 500, and the process-wide state is as
    the script found it."""
    script = tmp_path / "loop.py"
    script.write_text(textwrap.dedent("""
        import gc, logging, sys, warnings
        import dimsekit
        from pydicom import config

        def rss_kib():
            for line in open("/proc/self/status"):
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])

        def state():
            from pynetdicom import _config
            return (gc.get_freeze_count(), _config.LOG_HANDLER_LEVEL,
                    _config.LOG_RESPONSE_IDENTIFIERS, _config.LOG_REQUEST_IDENTIFIERS,
                    config.settings.reading_validation_mode,
                    config.settings.writing_validation_mode, list(warnings.filters),
                    {name: (lg.level, lg.propagate, list(lg.handlers))
                     for name, lg in logging.root.manager.loggerDict.items()
                     if isinstance(lg, logging.Logger)}, logging.root.handlers[:])

        pacs = dimsekit.Peer("127.0.0.1", int(sys.argv[1]))
        list(pacs.find(QueryRetrieveLevel="STUDY", StudyInstanceUID=""))  # loads it all
        before = state()
        found = 0
        with pacs.connect() as session:
            for i in range(3000):
                found += len(list(session.find(QueryRetrieveLevel="STUDY",
                                               AccessionNumber=f"*{i % 7}*",
                                               StudyInstanceUID="", PatientName="")))
                if i == 499:
                    gc.collect()
                    early = rss_kib()
            gc.collect()
            late = rss_kib()
        print(early, late, before == state(), found)
    """))
    out = subprocess.run([sys.executable, str(script), str(scp.port)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    early, late, unchanged, found = out.stdout.split()
    assert len(scp.requests) == 3001 and int(found) > 0
    assert unchanged == "True"
    assert int(late) - int(early) < 2048, (early, late)  # KiB


def test_the_library_does_not_load_the_cli(scp):
    """Layers: a script using the Python API loads neither click nor pluggy
    nor the find plugin (the CLI host and its plugins)."""
    code = textwrap.dedent(f"""
        import sys
        import dimsekit
        found = list(dimsekit.Peer("127.0.0.1", {scp.port}).find(
            QueryRetrieveLevel="STUDY", StudyInstanceUID=""))
        loaded = [m for m in ("click", "pluggy", "dimsekit.cli", "dimsekit.cli.host",
                              "dimsekit.plugins.find") if m in sys.modules]
        print(len(found), loaded)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"{len(_study_uids(scp))} []\n"


def test_ctrl_c_in_a_script_stays_a_keyboard_interrupt(make_scp):
    """The library does not turn Ctrl-C into its own error or wait out a
    grace: KeyboardInterrupt reaches the script at once, the association
    is aborted."""
    import signal

    scp = make_scp(hang_after=1)
    code = textwrap.dedent(f"""
        import sys, time
        import dimsekit
        pacs = dimsekit.Peer("127.0.0.1", {scp.port})
        with pacs.connect() as session:
            results = session.find(QueryRetrieveLevel="STUDY", StudyInstanceUID="")
            next(results)
            print("one", flush=True)
            try:
                next(results)
            except KeyboardInterrupt:
                print("interrupted", session.is_open, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "one\n"
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert time.monotonic() - started < 1.5, "a grace was waited out"
    assert out == "interrupted False\n", err
    assert proc.returncode == 0
    assert scp.wait_idle(5)
    assert scp.associations[0].ended == "aborted"
