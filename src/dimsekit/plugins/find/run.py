"""Running C-FIND: prepare every query before the network, then send them
on one association and turn the outcome into the documented exit code."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from dimsekit.api import (
    AssociationError,
    AssociationSettings,
    Exchange,
    ExitCode,
    Host,
    IncompleteError,
    InformationModel,
    PeerFailure,
    UsageError,
    Writer,
    apply_keys,
    describe_status,
    discard_stdout,
    get_logger,
    open_association,
    parse_keys,
    status_category,
)
from dimsekit.plugins.find.models import SERVICE, application_information, infer_model
from dimsekit.plugins.find.output import Output

log = get_logger("find")

PENDING = (0xFF00, 0xFF01)
CANCEL = 0xFE00
C_FIND_RSP = 0x8020  # CommandField
SPECIFIC_CHARACTER_SET = 0x00080005


@dataclass
class Query:
    label: str
    identifier: Any  # pydicom Dataset
    model: InformationModel


@dataclass
class Response:
    """What a writer learns about each response besides its identifier."""

    query: int  # 1-based index of the query in the run
    number: int  # 1-based, per query (DCMTK's "Find Response: N")
    status: int
    transfer_syntax: str
    model: InformationModel


@dataclass
class FindRequest:
    settings: AssociationSettings
    queries: list[Query]
    writer: Writer
    repeat: int = 1
    cancel_after: int | None = None
    ext_neg: dict[str, bytes] = field(default_factory=dict)
    output: str | None = None
    show_responses: bool = True
    writer_options: dict[str, Any] = field(default_factory=dict)
    extract: list[tuple[str, str]] = field(default_factory=list)  # (suffix, dir)
    extract_xml_single: str | None = None
    extract_limit: int | None = None
    overwrite: bool = False

    @classmethod
    def from_cli(cls, *, host: Host, query_files: list[str], peer: str, port: int,
                 association: AssociationSettings, keys: tuple[str, ...],
                 level: str | None, model: str | None, repeat: int,
                 cancel: int | None, fmt: str, output: str | None, extract: bool,
                 output_directory: str, columns: str | None = None,
                 charset: str | None = None, extract_xml: bool = False,
                 extract_xml_single: str | None = None, limit_output: int | None = None,
                 overwrite: bool = False, show_responses: bool = True,
                 correction: bool = False, **rest: Any) -> "FindRequest":
        """Everything that can be wrong with the command line is found here,
        before any network traffic (exit 2)."""
        association.peer, association.port = peer, port
        overrides = parse_keys(([f"QueryRetrieveLevel={level.upper()}"] if level else [])
                               + list(keys))
        models = {m.name: m for m in host.information_models(SERVICE)}
        if model is not None and model not in models:
            raise UsageError(f"unknown information model {model!r}")

        sources = [(path, read_query_file(path)) for path in query_files]
        if not sources:
            if not overrides:
                raise UsageError("no query: give -k keys and/or query files")
            from pydicom import Dataset

            sources = [("-k", Dataset())]
        queries = []
        for label, ds in sources:
            apply_keys(ds, overrides)
            if not association.new_vr:
                downgrade_new_vrs(ds)
            choose_charset(label, ds, charset, overrides)
            if model is not None:
                chosen = models[model]
            else:
                name, why = infer_model(ds.get("QueryRetrieveLevel"))
                chosen = models[name]
                log.info("query %s: %s (%s)", label, chosen.help.replace("use ", ""), why)
            check_encodable(label, ds)
            queries.append(Query(label, ds, chosen))

        requested = {k[4:].replace("_", "-") for k, v in rest.items()
                     if k.startswith("ext_") and v}
        ext_neg: dict[str, bytes] = {}
        flags = host.extended_negotiation_flags(SERVICE)
        for m in {q.model.name: q.model for q in queries}.values():
            info, skipped = application_information(flags, m.name, requested)
            for name in skipped:
                log.warning("--%s does not apply to the %s model; not requested", name,
                            m.name)
            if info:
                ext_neg[m.sop_class_uid] = info

        writers = {w.name: w for w in host.writers(SERVICE)}
        if fmt not in writers:
            raise UsageError(f"unknown output format {fmt!r}")
        if correction:
            log.info("+dc: pydicom reads responses leniently; nothing more to correct")
        writer_options = {"columns": columns, "keys": overrides,
                          "queries": [q.identifier for q in queries]}
        if columns:
            from dimsekit.plugins.find.csvfmt import columns_from_option

            columns_from_option(columns)  # a bad column is a usage error now
        extract_to = [(suffix, output_directory) for suffix, on in
                      ((".dcm", extract), (".xml", extract_xml)) if on]
        return cls(
            settings=association, queries=queries, writer=writers[fmt], repeat=repeat,
            cancel_after=cancel, ext_neg=ext_neg, output=output,
            show_responses=show_responses, writer_options=writer_options,
            extract=extract_to, extract_xml_single=extract_xml_single,
            extract_limit=limit_output, overwrite=overwrite,
        )


def read_query_file(path: str):
    """A query file as a dataset (its File Meta dropped); exit 2 if unusable."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    from pydicom.datadict import dictionary_has_tag

    if not os.path.isfile(path):
        raise UsageError(f"cannot read query file {path!r}: no such file")
    try:
        try:
            ds = dcmread(path)
            bare = False
        except InvalidDicomError:
            ds = dcmread(path, force=True)  # a bare dataset without preamble
            bare = True
        for elem in ds.iterall():  # parse now, not halfway through the run
            elem.value  # noqa: B018
    except Exception as exc:  # noqa: BLE001 - any parse failure is the file's fault
        raise UsageError(f"cannot read query file {path!r}: {exc}") from None
    if len(ds) == 0:
        raise UsageError(f"query file {path!r} holds no DICOM elements")
    if bare:
        # forced parsing reads anything; a real identifier has known tags
        odd = [t for t in ds.keys() if not t.is_private and not dictionary_has_tag(t)]
        if odd:
            raise UsageError(f"cannot read query file {path!r}: not a DICOM file "
                             f"(unknown tag {odd[0]})")
    return ds


NEW_VRS = {"UN", "UT", "UC", "UR", "OV", "SV", "UV", "OD", "OL"}


def downgrade_new_vrs(ds) -> None:
    """``-u``: send post-1993 VRs as OB (DCMTK's --disable-new-vr)."""
    for elem in ds.iterall():
        if elem.VR in NEW_VRS:
            value = elem.value
            if isinstance(value, str):
                value = value.encode("ascii", "replace")
            elif not isinstance(value, (bytes, bytearray)):
                value = str(value).encode("ascii", "replace")
            elem.VR = "OB"
            elem.value = value


def check_encodable(label: str, ds) -> None:
    from pydicom.filewriter import write_dataset
    from pydicom.filebase import DicomBytesIO

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    try:
        write_dataset(fp, ds)
    except Exception as exc:  # noqa: BLE001
        raise UsageError(f"query {label}: cannot encode the identifier: {exc}") from None


TEXT_VRS = {"SH", "LO", "ST", "LT", "UC", "UT", "PN"}


def _texts(elem) -> list[str]:
    value = elem.value
    if value is None or isinstance(value, (bytes, bytearray)):
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value]
    return [str(value)]


def _non_ascii(ds) -> list[Any]:
    """Text elements holding characters outside ASCII."""
    return [e for e in ds.iterall()
            if e.VR in TEXT_VRS and any(not t.isascii() for t in _texts(e))]


def choose_charset(label: str, ds, charset: str | None, overrides) -> None:
    """Give ``ds`` a Specific Character Set that encodes every value.

    ``--charset`` wins; a query without one that holds non-ASCII text gets
    the smallest standard one: ISO_IR 100 if Latin-1 will do, else ISO_IR 192.
    A value the set cannot encode is a usage error naming its key.
    """
    from pydicom import config
    from pydicom.charset import convert_encodings, encode_string, python_encoding

    if charset:
        terms = [t.strip() for t in charset.split("\\")]
        unknown = [t for t in terms if t and t not in python_encoding]
        if unknown:
            raise UsageError(f"--charset: unknown character set {unknown[0]!r} "
                             f"(e.g. ISO_IR 100, ISO_IR 192, ISO 2022 IR 87)")
        ds.SpecificCharacterSet = terms if len(terms) > 1 else terms[0]
    texts = _non_ascii(ds)
    if not texts:
        return
    if "SpecificCharacterSet" not in ds:
        def latin1(text: str) -> bool:
            try:
                text.encode("latin-1")
            except UnicodeEncodeError:
                return False
            return True

        term = ("ISO_IR 100" if all(latin1(t) for e in texts for t in _texts(e))
                else "ISO_IR 192")
        ds.SpecificCharacterSet = term
        log.info("query %s: non-ASCII values: Specific Character Set %s added", label, term)
    encodings = convert_encodings(ds.SpecificCharacterSet)
    saved = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.RAISE
    try:
        for elem in texts:
            for value in _texts(elem):
                try:
                    encode_string(value, encodings)
                except (UnicodeError, ValueError):
                    raise UsageError(
                        f"{_key_text(elem, overrides)}: {str(value)!r} cannot be encoded "
                        f"in {ds.SpecificCharacterSet}") from None
    finally:
        config.settings.writing_validation_mode = saved


def _key_text(elem, overrides) -> str:
    for key in overrides:
        if key.path and key.path[-1][0] == elem.tag:
            return f"-k {key.text!r}"
    return elem.keyword or str(elem.tag)


def _status_table(model: InformationModel) -> dict:
    from pynetdicom import status

    if model.name == "worklist":
        return status.MODALITY_WORKLIST_SERVICE_CLASS_STATUS
    return status.QR_FIND_SERVICE_CLASS_STATUS


class _Runner:
    """Sends the queries on one association, each identifier encoded once,
    and hands every pending response to the sinks as it arrives."""

    def __init__(self, request: FindRequest, assoc: Any, sinks: "_Sinks"):
        self.request = request
        self.assoc = assoc
        self.sinks = sinks
        self.failures: list[str] = []
        self.msg_id = 0

    def context_for(self, model: InformationModel):
        for cx in self.assoc.accepted_contexts:
            if cx.abstract_syntax == model.sop_class_uid:
                return cx
        raise AssociationError(
            f"the peer accepted no presentation context for {model.name} "
            f"({model.sop_class_uid})"
        )

    def run(self) -> None:
        from pynetdicom.dsutils import encode

        with Exchange(self.assoc, idle=self.sinks.flush) as exchange:
            for index, query in enumerate(self.request.queries, 1):
                cx = self.context_for(query.model)
                ts = cx.transfer_syntax[0]
                identifier = encode(query.identifier, ts.is_implicit_VR,
                                    ts.is_little_endian, ts.is_deflated)
                if identifier is None:
                    raise UsageError(f"query {query.label}: cannot encode the identifier "
                                     f"in {ts.name}")
                decode = _decoder(ts)
                for _ in range(self.request.repeat):
                    self.one(exchange, index, query, cx, identifier, decode)

    def one(self, exchange: Exchange, index: int, query: Query, cx: Any,
            identifier: bytes, decode: Any) -> None:
        """Send one C-FIND request and take its responses until the final one."""
        from pynetdicom.dimse_primitives import C_FIND

        verbose = log.isEnabledFor(logging.INFO)
        debug = log.isEnabledFor(logging.DEBUG)
        self.msg_id = self.msg_id % 65535 + 1
        request = C_FIND()
        request.MessageID = self.msg_id
        request.AffectedSOPClassUID = query.model.sop_class_uid
        request.Priority = 2
        request.Identifier = BytesIO(identifier)
        if verbose:
            log.info("Sending Find Request: MsgID %d (%s)", self.msg_id, query.label)
            _log_identifier(logging.INFO, "Request Identifier", query.identifier)
        exchange.send(request, cx.context_id)

        cancel_after = self.request.cancel_after
        pending = 0
        cancelled = False
        last = time.monotonic()
        while True:
            message = exchange.receive()
            if message is None:
                raise IncompleteError(self._lost(query, pending, last, exchange.failure))
            code = message.status
            if message.command_field != C_FIND_RSP or code is None:
                raise IncompleteError(self._lost(
                    query, pending, last, "the peer sent something other than a C-FIND "
                    f"response (command 0x{message.command_field or 0:04X})"))
            last = time.monotonic()
            if code not in PENDING:
                self._final(query, code, pending, cancelled)
                return
            pending += 1
            if verbose:
                log.info("Find Response: %d - 0x%04X (Pending)", pending, code)
            if cancelled:
                continue
            ds = decode(message.dataset)
            if ds is None:
                log.warning("query %s: response %d has an identifier that cannot "
                            "be decoded; skipped", query.label, pending)
                continue
            if debug:
                _log_identifier(logging.DEBUG, "Response Identifier", ds)
            self.sinks.write(ds, Response(index, pending, code, cx.transfer_syntax[0],
                                          query.model))
            if cancel_after and pending >= cancel_after:
                log.info("Sending Cancel Request: MsgID %d", self.msg_id)
                exchange.cancel(self.msg_id, cx.context_id)
                cancelled = True

    def _final(self, query: Query, code: int, pending: int, cancelled: bool) -> None:
        text = describe_status(code, _status_table(query.model))
        category = status_category(code)
        log.info("Received Final Find Response: %s after %d pending", text, pending)
        if category == "Success" or (code == CANCEL and cancelled):
            return
        if category == "Warning":
            log.warning("query %s: peer answered %s", query.label, text)
            return
        self.failures.append(f"query {query.label}: peer answered {text}")

    def _lost(self, query: Query, pending: int, last: float, failure: str | None) -> str:
        timeout = self.request.settings.dimse_timeout
        got = f"after {pending} response{'s' * (pending != 1)}"
        if failure:
            return f"query {query.label}: {failure} {got}; results may be incomplete"
        if timeout and time.monotonic() - last >= timeout * 0.9:
            return (f"query {query.label}: no response within the DIMSE timeout "
                    f"({timeout:g} s) {got}; results may be incomplete")
        return (f"query {query.label}: association aborted {got}; "
                f"results may be incomplete")


def _element_splitter(implicit: bool):
    """``split(data) -> {tag: RawDataElement} | None``: what pydicom's
    ``data_element_generator`` yields for a little endian identifier whose
    elements all have a defined length (the usual C-FIND response), at
    half its cost; None for anything else (undefined lengths, items at the
    top level, unknown or switched VRs, truncated data), which is then
    pydicom's to read.  ``tests/test_decode.py`` holds the two side by side.
    """
    import struct

    from pydicom.dataelem import RawDataElement, empty_value_for_VR
    from pydicom.filereader import ENCODED_VR
    from pydicom.tag import BaseTag
    from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

    head = struct.Struct("<HHL" if implicit else "<HH2sH").unpack_from
    long_length = struct.Struct("<L").unpack_from
    vrs = {vr: vr.decode("latin-1") for vr in ENCODED_VR if len(vr) == 2}
    long_vrs = {vr for vr, text in vrs.items() if text in EXPLICIT_VR_LENGTH_32}

    def split(data: bytes) -> dict | None:
        elements = {}
        end = len(data)
        pos = 0
        while pos < end:
            if end - pos < 8:
                return None
            if implicit:
                group, elem, length = head(data, pos)
                vr = None
                pos += 8
            else:
                group, elem, vr_bytes, length = head(data, pos)
                vr = vrs.get(vr_bytes)
                if vr is None:
                    return None
                if vr_bytes in long_vrs:
                    if end - pos < 12:
                        return None
                    length = long_length(data, pos + 8)[0]
                    pos += 12
                else:
                    pos += 8
            if group == 0xFFFE or length == 0xFFFFFFFF or pos + length > end:
                return None
            tag = BaseTag(group << 16 | elem)
            value = data[pos:pos + length] if length else empty_value_for_VR(vr, raw=True)
            elements[tag] = RawDataElement(tag, vr, length, value, pos, implicit, True)
            pos += length
        return elements

    return split


def _dataset_maker(implicit: bool, little: bool):
    """``make(elements, encoding) -> Dataset``: what ``Dataset(elements)``
    and ``set_original_encoding(implicit, little, encoding)`` give, in a
    tenth of the time.

    pydicom's ``Dataset.__init__`` sets a dozen attributes through its own
    ``__setattr__`` (~6 µs, as long as splitting the identifier); here a
    dataset made once per character set lends its attributes to every
    new one (a fresh copy of each mutable one).  Checked against the
    real constructor when the maker is made: should a pydicom release
    set up a dataset differently, the constructor is used.
    """
    from pydicom.dataset import Dataset

    def construct(elements: dict, encoding: Any) -> Any:
        ds = Dataset(elements)
        ds.set_original_encoding(implicit, little, encoding)
        return ds

    templates: dict[int, tuple[Any, dict, list[str]]] = {}
    new = Dataset.__new__

    def make(elements: dict, encoding: Any) -> Any:
        template = templates.get(id(encoding))
        if template is None or template[0] is not encoding:
            state = dict(vars(construct({}, encoding)))
            del state["_dict"]
            mutable = [name for name, value in state.items()
                       if isinstance(value, (dict, list, set, bytearray))]
            template = templates[id(encoding)] = (encoding, state, mutable)
        ds = new(Dataset)
        attributes = ds.__dict__
        attributes.update(template[1])
        for name in template[2]:
            attributes[name] = attributes[name].copy()
        attributes["_dict"] = elements
        return ds

    probe = {}
    made, built = make(probe, ["iso8859"]), construct(probe, ["iso8859"])
    if type(made) is not type(built) or vars(made) != vars(built):
        return construct
    return make


def _decoder(transfer_syntax: Any):
    """``decode(data) -> Dataset | None`` for identifiers in ``transfer_syntax``.

    What pydicom's ``read_dataset`` does, less its per-call overhead (40%
    of its time for a small identifier): the elements stay raw (pydicom
    converts each on first access; the writers format them as they are),
    a plain identifier is split by :func:`_element_splitter`, and the
    Specific Character Set's encodings are looked up once per distinct
    value.  A malformed identifier gives None.
    """
    import zlib

    from pydicom.charset import convert_encodings, default_encoding
    from pydicom.dataelem import convert_raw_data_element
    from pydicom.filereader import data_element_generator

    implicit, little = transfer_syntax.is_implicit_VR, transfer_syntax.is_little_endian
    deflated = transfer_syntax.is_deflated
    split = _element_splitter(implicit) if little else None
    make = _dataset_maker(implicit, little)
    encodings: dict[Any, Any] = {None: default_encoding}

    def decode(data: bytes | None):
        if data is None:
            return None
        try:
            if deflated:
                data = zlib.decompress(data, -zlib.MAX_WBITS)
            elements = split(data) if split is not None else None
            if elements is None:
                elements = {elem.tag: elem for elem in
                            data_element_generator(BytesIO(data), implicit, little)}
            charset = elements.get(SPECIFIC_CHARACTER_SET)
            key = None if charset is None else charset.value
            encoding = encodings.get(key)
            if encoding is None:
                value = convert_raw_data_element(charset).value
                encoding = encodings[key] = convert_encodings(value)
            return make(elements, encoding)
        except Exception:  # noqa: BLE001 - a malformed identifier is skipped, not fatal
            return None

    return decode


def _log_identifier(level: int, title: str, ds: Any) -> None:
    from dimsekit.plugins.find.dump import format_dataset

    log.log(level, "# %s\n%s", title, format_dataset(ds))


class _Sinks:
    """Every destination of a pending response: the stdout/-o writer and the
    response files; ``end()`` closes each however the run ended.

    When the reader of stdout goes away (``| head``) and there are files
    besides (-X, -Xs), stdout is dropped and the run goes on, so the files
    are complete and the exit code stays the queries'; with stdout alone
    the BrokenPipeError ends the run (the host then exits 0 quietly).
    """

    def __init__(self, request: FindRequest):
        self.items: list[Any] = []
        self.outputs: list[Output] = []
        self._stdout: tuple[Any, Output] | None = None
        for suffix, directory in request.extract:
            from dimsekit.plugins.find import extract

            render = extract.part10 if suffix == ".dcm" else extract.native_xml
            self.items.append(extract.Extractor(directory, suffix, render,
                                                overwrite=request.overwrite,
                                                limit=request.extract_limit))
        if request.extract_xml_single:
            from dimsekit.plugins.find.xmlfmt import XmlWriter

            self._open(XmlWriter, request.extract_xml_single, {})
        if request.show_responses:
            self._open(request.writer.factory, request.output, request.writer_options)

    def _open(self, factory, path: str | None, options: dict) -> None:
        out = Output(path)
        self.outputs.append(out)
        writer = factory(out.stream, options)
        if path is None:
            self._stdout = (writer, out)
        writer.begin()
        self.items.append(writer)

    def _stdout_gone(self, exc: BrokenPipeError) -> None:
        """stdout's reader went away: go on without it if there is more to
        write, or end the run (re-raise)."""
        if self._stdout is None or self.items == [self._stdout[0]]:
            raise exc
        writer, out = self._stdout
        self._stdout = None
        self.items.remove(writer)
        self.outputs.remove(out)
        discard_stdout()  # what it still buffers goes nowhere
        log.info("stdout closed by its reader: going on for the other outputs")

    def write(self, ds: Any, info: Response) -> None:
        for sink in list(self.items):
            try:
                sink.write(ds, info)
            except BrokenPipeError as exc:
                self._stdout_gone(exc)

    def flush(self) -> None:
        """Everything written so far, out: dimsekit is waiting for the peer."""
        for out in list(self.outputs):
            try:
                out.stream.flush()
            except BrokenPipeError as exc:
                self._stdout_gone(exc)

    def end(self) -> None:
        """End every sink and close every output, even when one fails (the
        pipe of stdout closed, a full disk): the others are still finished;
        a failure is raised afterwards, a real one before a closed pipe."""
        failures: list[BaseException] = []
        steps = [getattr(sink, "end", None) for sink in self.items]
        steps += [out.close for out in self.outputs]
        for step in steps:
            if step is None:
                continue
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - re-raised below
                failures.append(exc)
        if failures:
            failures.sort(key=lambda exc: isinstance(exc, BrokenPipeError))
            raise failures[0]


def run_find(request: FindRequest) -> int:
    """Send every query; return the exit code (or raise a DimsekitError)."""
    import gc

    from pydicom import config
    from pynetdicom.pdu_primitives import SOPClassExtendedNegotiation

    items = []
    for uid, info in request.ext_neg.items():
        item = SOPClassExtendedNegotiation()
        item.sop_class_uid = uid
        item.service_class_application_information = info
        items.append(item)
    uids = list(dict.fromkeys(q.model.sop_class_uid for q in request.queries))

    sinks = _Sinks(request)
    # everything long-lived is imported and built by now: the cyclic GC
    # need not walk it again on every collection and at exit (~30 ms a run)
    gc.freeze()
    validation = config.settings.reading_validation_mode
    if not log.isEnabledFor(logging.INFO):
        # pydicom's complaints about odd values are shown from -v on;
        # below that, checking every value of every response is wasted
        config.settings.reading_validation_mode = config.IGNORE
    try:
        with open_association(request.settings, uids, ext_neg=items) as assoc:
            runner = _Runner(request, assoc, sinks)
            runner.run()
    finally:
        config.settings.reading_validation_mode = validation
        sinks.end()
    for failure in runner.failures[:-1]:
        log.error(failure)
    if runner.failures:
        raise PeerFailure(runner.failures[-1])
    return ExitCode.OK
