"""Small typed records that plugins contribute through the hooks.

Hooks return these instead of mutating host state (conda's habit), so the
host can validate, list and de-duplicate contributions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict


@dataclass(frozen=True)
class InformationModel:
    """A query/retrieve information model a command can select.

    ``service`` says which command family uses it (``"find"``, ``"move"``,
    ...), so a move plugin contributes its own models without the host
    knowing about either.  ``flags`` are the option spellings that select the
    model (``("-P", "--patient")``).
    """

    name: str
    sop_class_uid: str
    service: str
    flags: tuple[str, ...]
    help: str
    #: used when several models of one service are selected by inference
    levels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtendedNegotiationFlag:
    """One byte of SOP Class Extended Negotiation (PS3.7 D.3.3.5).

    The command that owns the flag's ``service`` adds an option ``--NAME``;
    when given, byte ``byte_index`` of the service-class application
    information for the selected model is set to 1.  ``models`` names the
    information models the flag applies to (empty: all of the service).
    """

    name: str
    service: str
    byte_index: int
    help: str
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Writer:
    """An output format: ``--format NAME``.

    ``factory(stream, options)`` returns a :class:`DatasetWriter`;
    ``stream`` is a binary file object, ``options`` a
    :class:`WriterOptions`.  ``service`` tells which command family writes
    with it; ``"*"``: every command that writes data sets offers it.
    """

    name: str
    service: str
    factory: Callable[..., Any]
    help: str


class WriterOptions(TypedDict, total=False):
    """What a command tells a writer it creates (every key optional)."""

    #: ``--columns`` as given (csv), or None
    columns: str | None
    #: the ``-k`` keys, parsed (:class:`~dimsekit.keys.KeyOverride`)
    keys: list[Any]
    #: the identifiers the command sends (pydicom Datasets)
    queries: list[Any]
    #: responses belong to rows of a batch (a row number per response)
    batch: bool
    #: the run drills down: responses of several levels
    drill_down: bool


class ResponseRecord(Protocol):
    """What a writer is told of each response besides its data set
    (:class:`dimsekit.api.Response` is one; a batch's responses carry more)."""

    #: 1-based index of the query in the run
    query: int
    #: 1-based number of the response to its request
    number: int
    #: its DIMSE status
    status: int
    #: the UID of the transfer syntax it came in
    transfer_syntax: str


class DatasetWriter(Protocol):
    """An output format at work: ``begin()``, then ``write(dataset,
    response)`` for each response in order, then ``end()`` (also after a
    failure, to leave the output valid)."""

    def begin(self) -> None: ...

    def write(self, dataset: Any, response: ResponseRecord) -> None: ...

    def end(self) -> None: ...


@dataclass
class PluginInfo:
    """What ``dimsekit plugins`` reports about one plugin.

    ``dist`` is the importlib.metadata distribution: its name and version
    are read from it only when asked (parsing METADATA costs start-up time).
    """

    name: str
    explicit_distribution: str | None = None
    explicit_version: str | None = None
    status: str = "loaded"  # or "failed: <error>"
    hooks: list[str] = field(default_factory=list)
    dist: Any = field(default=None, repr=False, compare=False)

    @property
    def distribution(self) -> str | None:
        if self.explicit_distribution is None and self.dist is not None:
            return self.dist.name
        return self.explicit_distribution

    @property
    def version(self) -> str | None:
        if self.explicit_version is None and self.dist is not None:
            return self.dist.version
        return self.explicit_version

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "hooks": list(self.hooks),
        }

