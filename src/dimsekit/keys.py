"""The host's ``-k`` machinery: parse query keys and apply them to identifiers.

One grammar covers both reference tools (DCMTK ``findscu``, pynetdicom
``findscu``)::

    key       := path [ '=' value ]          split at the FIRST '=' only
    path      := step ( '.' step )*
    step      := element [ '[' n ']' ]       n: decimal item index >= 0
    element   := '(' gggg ',' eeee ')'       hex, either case
               | gggg ',' eeee               DCMTK's old syntax
               | Keyword                     pydicom dictionary keyword

Semantics (the user-facing contract is docs/find.md, "override matching keys"):

* ``Keyword`` / ``Keyword=`` -- a zero-length element (a return key).
* ``Keyword=value`` -- the value is taken verbatim (quotes included: it is
  the shell's job to remove them); for multi-valued VRs a backslash separates
  values, and a doubled backslash (the manuals' shell-escaped ``1\\\\2``
  arriving unprocessed) counts as one separator.  LT/ST/UT keep backslashes.
* Values are converted by the element's VR: US/SS/UL/SL/UV/SV -> int,
  FL/FD -> float (both range/type-checked by pydicom), IS/DS stay strings
  that pydicom accepts, OB/OW/OD/OF/OL/OV/UN from hex digits (``00FFEA08``),
  AT from ``(gggg,eeee)``, ``gggg,eeee``, ``ggggeeee`` or a keyword.
* ``Seq=`` / ``Seq`` -- an empty sequence (replaces an existing one);
  ``Seq[n]=`` -- makes sure items 0..n exist (empty items are appended);
  ``Seq[n].Path=value`` -- descends into item n, creating it as needed.
  A sequence never takes a value; an intermediate sequence needs ``[n]``.
* Ambiguous dictionary VRs: an existing element's VR wins; otherwise
  ``OB or OW`` -> OW, ``US or SS`` -> US (SS when the value is negative),
  ``US or OW`` / ``US or SS or OW`` -> US, SS, then OW (hex), whichever
  converts first.
* Tags the public dictionary does not know (private tags, mostly): private
  creators ``(gggg,00xx)`` are LO; otherwise the VR of an element already in
  the dataset (unless UN), else pydicom's private dictionary for the creator
  found in the dataset, else LO (query values are text; DCMTK would use UN,
  which would force hex).  An unknown tag with ``[n]`` is a sequence.
* Command (0000), file meta (0002), item (FFFE) and group length (gggg,0000)
  tags are refused: they cannot be part of an identifier.
* Bounds, checked while parsing (before any dataset is built): an item
  index is at most :data:`MAX_ITEM_INDEX` (1,000), a path at most
  :data:`MAX_DEPTH` (64) levels deep, and a key creates at most
  :data:`MAX_ITEMS` (10,000) sequence items -- also the most that
  :func:`apply_keys` adds to one dataset.  Everything here is iterative and
  linear in the key's length.

Every malformed key raises :class:`~dimsekit.errors.UsageError` with one line
``bad -k '<key as given>': <reason>``.

pydicom is imported inside the functions so that importing this module (and
building the CLI) stays cheap.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dimsekit.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from pydicom.dataset import Dataset

__all__ = [
    "MAX_DEPTH",
    "MAX_ITEMS",
    "MAX_ITEM_INDEX",
    "KeyOverride",
    "apply_keys",
    "build_identifier",
    "parse_key",
    "parse_keys",
]

#: one path step: (tag, item index or None)
Step = tuple[int, "int | None"]

_HEX = frozenset(string.hexdigits)
_INT_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
_FLOAT_VRS = frozenset({"FL", "FD"})
_BYTES_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
#: text VRs whose value may contain a backslash (never multi-valued)
_NO_SPLIT_VRS = frozenset({"LT", "ST", "UT"})
_FORBIDDEN_GROUPS = {0x0000: "command", 0x0002: "file meta", 0xFFFE: "item"}

#: the largest item index ``Seq[n]`` accepts
MAX_ITEM_INDEX = 1000
#: the most levels (path steps) a key may have
MAX_DEPTH = 64
#: the most sequence items one key, and one apply_keys call, may create
MAX_ITEMS = 10_000
#: a longer key is shown shortened in error messages
_SHOWN_KEY = 200


@dataclass(frozen=True)
class KeyOverride:
    """One parsed ``-k`` key.

    ``text`` is the key as given; ``path`` the steps from the top-level
    dataset down to the element, each ``(tag, index)`` with ``index`` the item
    number for a sequence step (None otherwise); ``value`` is None without
    ``=``, ``''`` for ``=`` with nothing after it, else the text after the
    first ``=``.
    """

    text: str
    path: tuple[Step, ...]
    value: str | None


class _KeyError(Exception):
    """Internal: a reason; turned into a UsageError naming the key."""


def _usage(text: str, reason: str) -> UsageError:
    if len(text) > _SHOWN_KEY:
        text = f"{text[:_SHOWN_KEY - 20]}...{text[-16:]}"
    shown = f"'{text}'" if text.isprintable() else repr(text)
    if len(reason) > 2 * _SHOWN_KEY:
        reason = f"{reason[:2 * _SHOWN_KEY - 3]}..."
    if not reason.isprintable():  # one line, whatever the key holds
        reason = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in reason)
    return UsageError(f"bad -k {shown}: {reason}")


# --------------------------------------------------------------------------
# parsing


def parse_key(text: str) -> KeyOverride:
    """Parse and validate one ``-k`` key against pydicom's dictionary."""
    try:
        return _parse(text)
    except _KeyError as exc:
        raise _usage(text, str(exc)) from None


def with_value(key: KeyOverride, value: str | None) -> KeyOverride:
    """``key`` (a parsed ``-k`` path, as a batch file's column names it)
    with another value, checked as :func:`parse_key` checks it, without
    parsing the path again."""
    return value_setter(key)(value)


def value_setter(key: KeyOverride) -> Callable[[str | None], KeyOverride]:
    """:func:`with_value` for one key, what its path names looked up once:
    ``value_setter(key)(value) == with_value(key, value)`` (a batch file's
    column, for each of its cells)."""
    base = key.text.partition("=")[0].strip()
    path = key.path
    tag, index = path[-1]
    vr = _dictionary_vr(tag)
    name = _name(tag)
    sequence = vr == "SQ" or index is not None
    candidates = _vr_candidates(vr, None) if vr is not None else None

    def set_value(value: str | None) -> KeyOverride:
        text = base if value is None else f"{base}={value}"
        if value:
            try:
                if sequence:
                    raise _KeyError(f"{name} is a sequence and takes no value "
                                    f"(set item contents with {name}[n].Keyword=value)")
                if candidates is not None:
                    _convert(candidates, value, name)
            except _KeyError as exc:
                raise _usage(text, str(exc)) from None
        return KeyOverride(text=text, path=path, value=value)

    return set_value


def parse_keys(texts: Iterable[str]) -> list[KeyOverride]:
    """Parse several keys, in order; the first bad one raises UsageError."""
    return [parse_key(text) for text in texts]


def _parse(text: str) -> KeyOverride:
    path_text, sep, value_text = text.partition("=")
    value = value_text if sep else None
    path_text = path_text.strip()
    if not path_text:
        raise _KeyError("missing tag or keyword" + (" before '='" if sep else ""))

    depth = path_text.count(".") + 1
    if depth > MAX_DEPTH:
        raise _KeyError(f"path is {depth} levels deep (at most {MAX_DEPTH})")
    tokens = [_split_step(comp) for comp in path_text.split(".")]
    items = sum(index + 1 for _, index in tokens if index is not None)
    if items > MAX_ITEMS:
        raise _KeyError(f"the path would create {items} sequence items (at most {MAX_ITEMS})")
    steps: list[Step] = []
    for pos, (name, index) in enumerate(tokens):
        tag = _parse_element(name)
        vr = _dictionary_vr(tag)
        is_last = pos == len(tokens) - 1
        if index is not None and vr not in (None, "SQ"):
            raise _KeyError(f"{name} is not a sequence (VR {vr}), so it takes no [{index}]")
        if not is_last and index is None:
            if vr == "SQ" or vr is None:
                raise _KeyError(f"sequence {name} needs an item index, e.g. {name}[0]")
            raise _KeyError(f"{name} is not a sequence (VR {vr}), so nothing can follow it")
        if is_last:
            if vr == "SQ" or index is not None:
                if value:
                    raise _KeyError(
                        f"{name} is a sequence and takes no value "
                        f"(set item contents with {name}[n].Keyword=value)"
                    )
            elif vr is not None and value:
                # validate now, before any network traffic; apply_keys converts again
                _convert(_vr_candidates(vr, None), value, name)
        steps.append((tag, index))
    return KeyOverride(text=text, path=tuple(steps), value=value)


def _split_step(comp: str) -> tuple[str, int | None]:
    """``Name`` or ``Name[n]`` -> (name, n or None)."""
    if not comp:
        raise _KeyError("empty path component (stray '.')")
    if "[" not in comp and "]" not in comp:
        return comp, None
    start, end = comp.find("["), comp.find("]")
    if comp.count("[") != 1 or comp.count("]") != 1 or end < start:
        raise _KeyError(f"unbalanced brackets in '{comp}'")
    if end != len(comp) - 1:
        raise _KeyError(f"unexpected text after ']' in '{comp}'")
    name, index_text = comp[:start], comp[start + 1 : end]
    if not name:
        raise _KeyError(f"missing tag or keyword before '[' in '{comp}'")
    if index_text == "*":
        raise _KeyError(f"wildcard item index [*] is not supported in '{comp}'")
    if not (index_text.isascii() and index_text.isdigit()):
        raise _KeyError(f"bad item index '[{_clip(index_text)}]' in '{_clip(comp)}' "
                        f"(expected [n], n >= 0)")
    # compare digits before int(): a 5,000-digit index must not be converted
    digits = index_text.lstrip("0") or "0"
    if len(digits) > len(str(MAX_ITEM_INDEX)) or int(digits) > MAX_ITEM_INDEX:
        raise _KeyError(f"item index [{_clip(index_text)}] is too large "
                        f"(at most {MAX_ITEM_INDEX})")
    return name, int(digits)


def _clip(text: str, size: int = 40) -> str:
    """``text`` shortened for a message."""
    return text if len(text) <= size else f"{text[:size - 3]}..."


def _hex4(text: str) -> bool:
    return len(text) == 4 and all(ch in _HEX for ch in text)


def _parse_element(name: str) -> int:
    """A path element's tag from ``(gggg,eeee)``, ``gggg,eeee`` or a keyword."""
    tag = _tag_from_text(name)
    _check_allowed(tag, name)
    return tag


def _tag_from_text(name: str) -> int:
    if "(" in name or ")" in name or "," in name:
        inner = name
        if name.startswith("(") or name.endswith(")"):
            if not (name.startswith("(") and name.endswith(")")):
                raise _KeyError(f"unbalanced parentheses in '{name}'")
            inner = name[1:-1]
        group, _, elem = inner.partition(",")
        if not (_hex4(group) and _hex4(elem)):
            raise _KeyError(f"bad tag '{name}' (expected (gggg,eeee), 4 hex digits each)")
        return int(group, 16) << 16 | int(elem, 16)
    if not name.isidentifier():
        raise _KeyError(f"bad tag or keyword '{name}'")

    from pydicom.datadict import repeater_has_keyword, tag_for_keyword

    tag = tag_for_keyword(name)
    if tag is None:
        if repeater_has_keyword(name):
            raise _KeyError(
                f"{name} is a repeating-group element: give its tag as (gggg,eeee)"
            )
        raise _KeyError(f"unknown keyword '{name}'{_did_you_mean(name)}")
    return tag


def _did_you_mean(name: str) -> str:
    import difflib

    from pydicom.datadict import keyword_dict

    close = difflib.get_close_matches(name, keyword_dict.keys(), n=1, cutoff=0.8)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_allowed(tag: int, name: str) -> None:
    group, elem = tag >> 16, tag & 0xFFFF
    if group in _FORBIDDEN_GROUPS:
        raise _KeyError(f"{name} is a {_FORBIDDEN_GROUPS[group]} element, not a query key")
    if elem == 0:
        raise _KeyError(f"{name} is a group length element, not a query key")


def _dictionary_vr(tag: int) -> str | None:
    """The public dictionary VR (repeating groups included), LO for private
    creators, None when unknown."""
    from pydicom.datadict import dictionary_VR
    from pydicom.tag import Tag

    tag = Tag(tag)
    if tag.is_private_creator:
        return "LO"
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


# --------------------------------------------------------------------------
# values


def _vr_candidates(vr: str, existing_vr: str | None) -> list[str]:
    """The VRs to try, in order, for a (possibly ambiguous) dictionary VR."""
    options = vr.split(" or ")
    if options == ["OB", "OW"]:
        options = ["OW", "OB"]
    if existing_vr in options:
        options.remove(existing_vr)
        options.insert(0, existing_vr)
    return options


def _convert(candidates: list[str], value: str | None, name: str) -> tuple[str, Any]:
    """(VR, pydicom value) for the first candidate VR the value converts to."""
    reasons = []
    for vr in candidates:
        try:
            return vr, _convert_one(vr, value)
        except ValueError as exc:
            reasons.append(str(exc))
    raise _KeyError(f"bad value for {name} ({' or '.join(candidates)}): {reasons[0]}")


def _split_values(value: str) -> list[str]:
    while "\\\\" in value:
        value = value.replace("\\\\", "\\")
    return value.split("\\")


_PYDICOM: tuple[Any, Any, Any] | None = None


def _pydicom() -> tuple[Any, Any, Any]:
    """pydicom's config, empty_value_for_VR and validate_value, imported once
    (not once a value: a batch converts two values a cell)."""
    global _PYDICOM
    if _PYDICOM is None:
        from pydicom import config
        from pydicom.dataelem import empty_value_for_VR
        from pydicom.valuerep import validate_value

        _PYDICOM = (config, empty_value_for_VR, validate_value)
    return _PYDICOM


def _convert_one(vr: str, value: str | None) -> Any:
    config, empty_value_for_VR, validate_value = _PYDICOM or _pydicom()
    if not value:
        return empty_value_for_VR(vr)
    if vr in _BYTES_VRS:
        compact = "".join(value.split())
        if len(compact) % 2 or not all(ch in _HEX for ch in compact):
            raise ValueError(f"'{value}' is not hex bytes (pairs of hex digits, e.g. 00FFEA08)")
        return bytes.fromhex(compact)
    if vr in _NO_SPLIT_VRS:
        return value

    parts = _split_values(value)
    out: list[Any]
    if vr in _INT_VRS or vr in _FLOAT_VRS:
        kind, cast = ("an integer", int) if vr in _INT_VRS else ("a number", float)
        out = []
        for part in parts:
            try:
                number = cast(part)
            except ValueError:
                raise ValueError(f"'{part}' is not {kind}") from None
            validate_value(vr, number, config.RAISE)
            out.append(number)
    elif vr in ("IS", "DS"):
        for part in parts:
            try:
                validate_value(vr, part, config.RAISE)
            except ValueError:
                what = "an integer string" if vr == "IS" else "a decimal string"
                raise ValueError(f"'{part}' is not {what}") from None
        out = parts
    elif vr == "AT":
        out = []
        for part in parts:
            try:
                out.append(_parse_at(part))
            except _KeyError:
                raise ValueError(
                    f"'{part}' is not a tag ((gggg,eeee), ggggeeee or a keyword)"
                ) from None
    else:  # other text VRs: pydicom takes the strings as they are
        out = parts
    return out[0] if len(out) == 1 else out


def _parse_at(text: str) -> int:
    """An AT value: ``(gggg,eeee)``, ``gggg,eeee``, ``ggggeeee`` or a keyword."""
    text = text.strip()
    if len(text) == 8 and all(ch in _HEX for ch in text):
        return int(text, 16)
    return _tag_from_text(text)


# --------------------------------------------------------------------------
# applying


def apply_keys(ds: Dataset, overrides: Iterable[KeyOverride | str]) -> Dataset:
    """Apply keys to ``ds`` in place (and return it).

    An existing element is replaced, a missing one inserted; sequences and
    items along a path are created as needed; everything else in ``ds``
    (e.g. the rest of a query file) is kept.  Plain strings are parsed first.
    """
    if isinstance(overrides, (str, KeyOverride)):
        overrides = [overrides]
    budget = _Budget(MAX_ITEMS)
    for override in overrides:
        if isinstance(override, str):
            override = parse_key(override)
        try:
            _apply(ds, override, budget)
        except _KeyError as exc:
            raise _usage(override.text, str(exc)) from None
    return ds


class PlainKeys:
    """:func:`apply_keys` at a third of the cost for keys that each set one
    top-level element whose dictionary VR is one VR, not SQ, outside the
    private groups and Pixel Data (a batch row's columns, mostly): the VR
    and name each key's tag stands for are looked up once, and the new
    elements go straight into the element dict a Dataset is then made of,
    which is all that ``Dataset.__setitem__`` does for such elements.
    Any other key is :func:`apply_keys`'s."""

    def __init__(self) -> None:
        from pydicom import config
        from pydicom.dataelem import DataElement

        self._element = DataElement
        self._ignore = config.IGNORE
        #: a key's path -> (tag, VR, name), or None: not a plain key
        self._resolved: dict[tuple, tuple[Any, str, str] | None] = {}

    def apply(self, elements: dict, overrides: list[KeyOverride]) -> bool:
        """Apply ``overrides`` to ``elements`` (tag -> element) as
        ``apply_keys(Dataset(elements), overrides)`` would; False, with
        nothing applied, when one of them is not a plain key or two set
        the same element (then it is apply_keys's to do).  A value the VR
        refuses is apply_keys's UsageError."""
        resolved = self._resolved
        plan = []
        tags = set()
        for key in overrides:
            info = resolved.get(key.path, _UNRESOLVED)
            if info is _UNRESOLVED:
                info = resolved[key.path] = _plain_key(key.path)
            if info is None or info[0] in tags:
                return False
            tags.add(info[0])
            plan.append((key, info))
        DataElement, ignore = self._element, self._ignore
        for key, (tag, vr, name) in plan:
            try:
                vr, value = _convert([vr], key.value, name)
            except _KeyError as exc:
                raise _usage(key.text, str(exc)) from None
            elem = DataElement(tag, vr, value, validation_mode=ignore)
            elements[elem.tag] = elem
        return True


_UNRESOLVED: Any = object()


def _plain_key(path: tuple[Step, ...]) -> tuple[Any, str, str] | None:
    """(tag, VR, name) of a key :class:`PlainKeys` applies, else None."""
    if len(path) != 1 or path[0][1] is not None:
        return None
    tag = path[0][0]
    if tag >> 16 & 1 or tag >> 16 == 0x7FE0:  # private creators; pixel data
        return None
    vr = _dictionary_vr(tag)
    if vr is None or vr == "SQ" or " or " in vr:  # an ambiguous VR: the element's decides
        return None
    return tag, vr, _name(tag)


def element_holder(ds: Any, path: Iterable[Step]) -> Any:
    """The data set (``ds`` or an item in it) that holds the element at a
    parsed ``-k`` path (:attr:`KeyOverride.path`), or None if an item on
    the way is missing."""
    steps = tuple(path)
    current = ds
    for tag, index in steps[:-1]:
        elem = current.get(tag)
        if elem is None or elem.VR != "SQ" or len(elem.value) <= (index or 0):
            return None
        current = elem.value[index or 0]
    return current


def build_identifier(overrides: Iterable[KeyOverride | str]) -> Dataset:
    """A new Dataset made of the keys alone (``-k`` without a query file)."""
    from pydicom.dataset import Dataset

    return apply_keys(Dataset(), overrides)


class _Budget:
    """How many more sequence items the keys may create."""

    def __init__(self, left: int) -> None:
        self.left = left

    def take(self, count: int) -> None:
        if count > self.left:
            raise _KeyError(f"the keys would create more than {MAX_ITEMS} sequence items")
        self.left -= count


def _apply(ds: Dataset, override: KeyOverride, budget: _Budget) -> None:
    from pydicom import config
    from pydicom.dataelem import DataElement

    # the parser's bounds, for a KeyOverride made by hand
    if len(override.path) > MAX_DEPTH:
        raise _KeyError(f"path is {len(override.path)} levels deep (at most {MAX_DEPTH})")
    if any(step[1] is not None and step[1] > MAX_ITEM_INDEX for step in override.path):
        raise _KeyError(f"an item index is too large (at most {MAX_ITEM_INDEX})")
    current = ds
    *parents, (tag, index) = override.path
    for parent_tag, parent_index in parents:
        if parent_index is None:
            raise _KeyError(f"sequence {_name(parent_tag)} needs an item index")
        items = _sequence(current, parent_tag, replace=False)
        _ensure_items(items, parent_index, budget)
        current = items[parent_index]

    name = _name(tag)
    existing = current.get(tag)
    existing_vr = str(existing.VR) if existing is not None else None
    vr = _dictionary_vr(tag)
    if index is not None or vr == "SQ":
        items = _sequence(current, tag, replace=index is None)
        if index is not None:
            _ensure_items(items, index, budget)
        return

    if vr is None:
        vr = _unknown_vr(current, tag, existing_vr)
        if vr == "SQ":
            if override.value:
                raise _KeyError(f"{name} is a sequence and takes no value")
            _sequence(current, tag, replace=True)
            return
    vr, value = _convert(_vr_candidates(vr, existing_vr), override.value, name)
    current[tag] = DataElement(tag, vr, value, validation_mode=config.IGNORE)


def _unknown_vr(ds: Dataset, tag: int, existing_vr: str | None) -> str:
    """VR for a tag the public dictionary does not know (see module doc)."""
    if existing_vr and existing_vr != "UN":
        return existing_vr
    if tag >> 16 & 1:  # private: look for its creator in this dataset
        from pydicom.datadict import private_dictionary_VR

        creator_tag = (tag & 0xFFFF0000) | (tag >> 8 & 0xFF)
        creator = ds.get(creator_tag)
        if creator is not None and isinstance(creator.value, str) and creator.value:
            try:
                return str(private_dictionary_VR(tag, creator.value))
            except KeyError:
                pass
    return "LO"


def _sequence(ds: Dataset, tag: int, *, replace: bool) -> list:
    """The item list of sequence ``tag`` in ``ds``, created (or replaced by
    an empty one) as needed."""
    existing = ds.get(tag)
    if replace or existing is None or existing.VR != "SQ":
        ds.add_new(tag, "SQ", [])
    return ds[tag].value


def _ensure_items(items: list, index: int, budget: _Budget) -> None:
    from pydicom.dataset import Dataset

    if len(items) <= index:
        budget.take(index + 1 - len(items))
    while len(items) <= index:
        items.append(Dataset())


def _name(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
