"""``dimsekit find``: the click command, built from what the host collected.

Models, extended-negotiation flags and output formats are options made
from hook contributions, so a plugin can add any of them without touching
this module.  Nothing heavy is imported here: ``--help`` stays instant.
"""

from __future__ import annotations

from typing import Any

import click

from dimsekit.api import (
    SERVICE,
    DimsekitCommand,
    Host,
    args_in_order,
    association_options,
    general_options,
    key_options,
    logging_options,
    model_options,
    negotiation_options,
    option,
    peer_arguments,
)

_Q = "query"
_OUT = "output"
_FLOW = "flow"
_BATCH = "batches and unattended runs"


def _query_files_in_order(ctx: click.Context) -> list[str] | None:
    """Every query file, ``-f FILE`` and positional, in order of appearance
    (click keeps options and positional arguments apart), from the walk
    :class:`DimsekitCommand` made of the command line; None without one."""
    given = args_in_order(ctx)
    if given is None:
        return None
    files: list[str] = []
    positional = 0
    for g in given:
        if g.param is None:
            positional += 1
            if positional > 2:  # PEER and PORT come first
                files.extend(g.values)
        elif g.param.name == "query_file_opts":
            files.extend(g.values)
    return files


def _show_responses_by_default(kwargs: dict[str, Any]) -> bool:
    """Neither +sr nor -sr given: as in DCMTK, extracting (-X, -Xx, -Xs)
    implies -sr, nothing on stdout; an explicit ``-o FILE`` is still written."""
    extracting = (kwargs.get("extract") or kwargs.get("extract_xml")
                  or kwargs.get("extract_xml_single"))
    return not extracting or kwargs.get("output") is not None


def tune_process() -> None:
    """What the command line does to its own process before a run (the
    library does none of it): everything long-lived is imported and built
    by now, so the cyclic GC need not walk it again on every collection and
    at exit (~30 ms a run); and below -v, pydicom does not check every value
    of every response for complaints nobody will see."""
    import gc
    import logging

    from pydicom import config

    from dimsekit.api import get_logger, tune_pynetdicom

    if not get_logger("find").isEnabledFor(logging.INFO):
        # (set before pynetdicom is imported: its import makes ~2,900 UIDs,
        # each checked again by pydicom in its default mode, ~8 ms)
        config.settings.reading_validation_mode = config.IGNORE
    tune_pynetdicom()
    gc.freeze()
    gc.enable()  # off since the process started (DimsekitCommand's defer_gc)


def build_find_command(host: Host) -> click.Command:
    """The ``find`` command for the models, flags and writers ``host`` has."""
    formats = [w.name for w in host.writers(SERVICE)] or ["dump"]
    decorators = [
        click.command("find", cls=DimsekitCommand, defer_gc=True, context_settings={
            "help_option_names": ["-h", "--help"], "max_content_width": 100}),
        general_options,
        logging_options,
        key_options,
        option("-f", "--file", "query_file_opts", group=_Q, multiple=True,
               metavar="FILE", help="use DICOM file FILE as a query (repeatable); "
               "-k applies on top of it"),
        option("--charset", group=_Q, metavar="TERM",
               help="Specific Character Set of the query, e.g. 'ISO_IR 100' "
                    "(default: none if ASCII, else the smallest standard set that "
                    "encodes every value: ISO_IR 100 or ISO_IR 192)"),
        option("--strict", group=_Q, is_flag=True,
               help="make query lint warnings (W: lines) usage errors: exit 2, nothing sent"),
        option("-L", "--level", group=_Q, metavar="LEVEL",
               type=click.Choice(["PATIENT", "STUDY", "SERIES", "IMAGE"],
                                 case_sensitive=False),
               help="set QueryRetrieveLevel (PATIENT, STUDY, SERIES or IMAGE)"),
        model_options(host, SERVICE),
        association_options("FINDSCU"),
        option("--repeat", group=_FLOW, type=click.IntRange(min=1), default=1,
               metavar="N", help="repeat each query N times"),
        option("--dry-run", group=_FLOW, is_flag=True,
               help="parse, check and build everything, then print the identifiers that "
                    "would be sent (--format), the model and why, the presentation "
                    "contexts and extended negotiation; no network"),
        option("--cancel", group=_FLOW, type=click.IntRange(min=1), metavar="N",
               help="send C-CANCEL after N pending responses (default: never)"),
        option("--batch", group=_BATCH, metavar="FILE",
               help="one query per row of FILE ('-': standard input): CSV with a header "
                    "row of keys (-k grammar), or NDJSON of DICOM JSON objects; -k keys "
                    "and a query file are added to every row (a row's value wins); every "
                    "response is tied to its row (docs/scripting.md)"),
        option("--parallel", group=_BATCH, type=click.IntRange(1, 64), default=1,
               metavar="N", help="spread the queries over N associations (output stays "
                                 "in row order unless --unordered)"),
        option("--unordered", group=_BATCH, is_flag=True,
               help="with --parallel: write responses as they arrive, not in row order"),
        option("--drill-down", "drill_down", group=_BATCH, metavar="LEVEL",
               type=click.Choice(["STUDY", "SERIES", "IMAGE"], case_sensitive=False),
               help="for every match, query the next level with its unique key, down to "
                    "LEVEL; -k LEVEL:KEY[=VALUE] sets a level's keys (e.g. -k "
                    "SERIES:Modality=CT)"),
        option("--retry", group=_BATCH, type=click.IntRange(min=0), default=0, metavar="N",
               help="retry N times when the association fails in a way that may pass "
                    "(refused, timed out, rejected-transient) or is aborted before a "
                    "query's first response (never after: no duplicates)"),
        option("--retry-wait", group=_BATCH, type=click.FloatRange(min=0), default=1.0,
               metavar="S", show_default=True,
               help="seconds before the first retry, doubled for each next (at most 60)"),
        option("--max-per-query", group=_BATCH, type=click.IntRange(min=1), metavar="N",
               help="the peer's result cap: a query that returns N matches (or that the "
                    "peer stops itself) is split in halves on a date range "
                    "(--split-on) until each part is under N; merged without duplicates"),
        option("--split-on", group=_BATCH, metavar="KEY",
               help="the date key --max-per-query splits on (default: the level's date: "
                    "StudyDate, SeriesDate, ContentDate, PatientBirthDate)"),
        negotiation_options(host, SERVICE),
        option("--format", "fmt", group=_OUT, type=click.Choice(formats),
               default="dump", show_default=True,
               help="format of the responses on stdout: " + ", ".join(formats)),
        option("--count", group=_OUT, is_flag=True,
               help="print only the number of matches (each query's with -v)"),
        option("--columns", group=_OUT, metavar="K1,K2,...",
               help="csv columns: keywords, tags or paths such as "
                    "ScheduledProcedureStepSequence[0].Modality (default: the "
                    "query's keys in query order)"),
        option("-o", "--output", group=_OUT, metavar="FILE",
               help="write the formatted responses to FILE instead of stdout "
                    "(written to a temp file, renamed when the run ends)"),
        option("+sr", "--show-responses", "show_responses", group=_OUT, flag_value=True,
               default=None,
               help="write responses to stdout / -o (default, except with -X/-Xx/-Xs)"),
        option("-sr", "--hide-responses", "show_responses", group=_OUT, flag_value=False,
               default=None,
               help="do not write responses to stdout / -o (the default with -X/-Xx/-Xs)"),
        option("-X", "--extract", "-w", "--write", "extract", group=_OUT, is_flag=True,
               help="extract responses to DICOM files rsp0001.dcm, ... (pending "
                    "responses only, numbered across the run)"),
        option("-Xx", "--extract-xml", group=_OUT, is_flag=True,
               help="extract responses to PS3.19 XML files rsp0001.xml, ..."),
        option("-Xs", "--extract-xml-single", group=_OUT, metavar="FILE",
               help="extract all responses to one PS3.19 XML file FILE"),
        option("-Xlo", "--limit-output", group=_OUT, type=click.IntRange(min=0),
               metavar="N", help="write at most N response files (default: unlimited)"),
        option("-od", "--output-directory", group=_OUT, metavar="DIR", default=".",
               show_default=True, help="write extracted files to DIR (created if missing)"),
        option("--overwrite", group=_OUT, is_flag=True,
               help="replace existing rspNNNN files instead of refusing to start"),
        option("+dc", "--enable-correction", "correction", group=_OUT, flag_value=True,
               default=False, help="enable automatic data correction (accepted for "
               "DCMTK compatibility: responses are always read leniently)"),
        option("-dc", "--disable-correction", "correction", group=_OUT, flag_value=False,
               help="disable automatic data correction (default)"),
        peer_arguments,
        click.argument("query_files", nargs=-1, metavar="[QUERY_FILE]..."),
    ]

    def find(**kwargs: Any) -> int:
        """C-FIND SCU: query PEER PORT with -k keys and/or query files.

        The information model is -P/-S/-O/-W/-U or, when none is given,
        inferred from QueryRetrieveLevel (PATIENT: patient root; other:
        study root; none: modality worklist).  Exit status: 0 success,
        1 failure status from the peer, 2 usage error, 3 no association,
        4 results may be incomplete (association lost, timed out or broken
        mid-query, malformed responses skipped), 5 results could not be
        written, 70 internal error, 130 interrupted.
        """
        from dimsekit.plugins.find.run import FindRequest, run_find

        ctx = click.get_current_context()
        # click parsed them apart; DimsekitCommand noted their order
        unordered = [*kwargs.pop("query_file_opts"), *kwargs.pop("query_files")]
        ordered = _query_files_in_order(ctx) or unordered
        if sorted(ordered) != sorted(unordered):  # pragma: no cover - a parsing bug
            ordered = unordered
        if kwargs.get("show_responses") is None:
            kwargs["show_responses"] = _show_responses_by_default(kwargs)
        request = FindRequest.from_cli(host=host, query_files=ordered, **kwargs)
        tune_process()
        return run_find(request)

    command: Any = find
    for deco in reversed(decorators):
        command = deco(command)
    assert isinstance(command, click.Command)  # click.command(...) comes first
    return command
