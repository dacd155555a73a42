"""Raw identifiers as a peer could send them, for tests that hold a fast
path of dimsekit's against pydicom: random elements of every VR, padded,
multi-valued, oddly encoded or malformed values, in several character
sets, optionally with sequences."""

from __future__ import annotations

import random
import struct

from pydicom.datadict import DicomDictionary

LONG_HEADER = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
CHARSETS = {
    None: "latin-1",
    "ISO_IR 100": "latin-1",
    "ISO_IR 192": "utf-8",
    "ISO_IR 144": "iso8859-5",
    "GB18030": "gb18030",
    "ISO 2022 IR 6\\ISO 2022 IR 87": "iso2022_jp",
    "ISO_IR 13": "shift_jis",
    "NO SUCH SET": "latin-1",
}
TEXT = "AbZ09 ^=\\.-+ \x00ÄéжЖ山田"


def tags_by_vr() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for tag, entry in DicomDictionary.items():
        vr, retired = entry[0], entry[3]
        if tag >> 16 in (0x0000, 0x0002, 0x0008) and tag & 0xFFFF == 0:
            continue
        if tag == 0x00080005 or retired or tag >> 16 == 0xFFFE:
            continue
        found.setdefault(vr, []).append(tag)
    return found


TAGS = tags_by_vr()
VRS = sorted(vr for vr in TAGS if len(vr) == 2 and vr != "SQ")


def text_value(rng: random.Random, codec: str) -> bytes:
    pieces = [rng.choice(["", " ", "  ", "\\", "=", "^", "\x00"])]
    for _ in range(rng.randint(0, 4)):
        pieces.append("".join(rng.choice(TEXT) for _ in range(rng.randint(0, 6))))
        pieces.append(rng.choice(["\\", "=", "", " ", "^"]))
    text = "".join(pieces)
    if rng.random() < 0.1:
        return text.encode("latin-1", "replace") + bytes([rng.randrange(0x80, 0x100)])
    return text.encode(codec, "replace")


def number_value(rng: random.Random, vr: str) -> bytes:
    choices = ["0", "12", " 7", "-3 ", "+4", "1.5", "1e3", "-.5", "2.", "abc", "",
               " ", "12345678901234567890", "1e999", "nan", "1_000", "0001"]
    values = [rng.choice(choices) for _ in range(rng.choice([1, 1, 2, 3]))]
    return "\\".join(values).encode() + rng.choice([b"", b" ", b"\x00"])


def binary_value(rng: random.Random) -> bytes:
    size = rng.choice([0, 2, 4, 8, 3, 12, 16])
    if rng.random() < 0.2:  # NaN/inf patterns for FL/FD
        return struct.pack("<d", float(rng.choice(["nan", "inf", "-inf"])))[:size]
    return bytes(rng.randrange(256) for _ in range(size))


def element(rng: random.Random, vr: str, codec: str) -> bytes:
    if vr in ("IS", "DS"):
        return number_value(rng, vr)
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "SV", "UV", "AT", "OB", "OW", "OF",
              "OD", "OL", "OV", "UN"):
        return binary_value(rng)
    return text_value(rng, codec)


UNDEFINED = 0xFFFFFFFF


def encode(elements: list[tuple], implicit: bool, little: bool) -> bytes:
    """Elements are (tag, vr, value) or (tag, vr, value, undefined_length);
    an SQ's value is its encoded items."""
    end = "<" if little else ">"
    out = bytearray()
    for tag, vr, value, *undefined in sorted(elements):
        if len(value) % 2:
            value += b"\x00" if vr == "UI" or vr not in ("PN", "LO", "SH", "CS") else b" "
        length = UNDEFINED if undefined and undefined[0] else len(value)
        out += struct.pack(end + "HH", tag >> 16, tag & 0xFFFF)
        if implicit:
            out += struct.pack(end + "L", length)
        elif vr in LONG_HEADER:
            out += vr.encode() + b"\x00\x00" + struct.pack(end + "L", length)
        else:
            out += vr.encode() + struct.pack(end + "H", len(value))
        out += value
        if length == UNDEFINED:
            out += struct.pack(end + "HHL", 0xFFFE, 0xE0DD, 0)
    return bytes(out)


def item(body: bytes, undefined: bool, little: bool = True) -> bytes:
    end = "<" if little else ">"
    if undefined:
        return (struct.pack(end + "HHL", 0xFFFE, 0xE000, UNDEFINED) + body
                + struct.pack(end + "HHL", 0xFFFE, 0xE00D, 0))
    return struct.pack(end + "HHL", 0xFFFE, 0xE000, len(body)) + body


def sequence(rng: random.Random, implicit: bool, codec: str) -> tuple:
    items = b""
    for _ in range(rng.randint(0, 2)):
        body = encode([(tag, vr, element(rng, vr, codec)) for tag, vr in
                       ((rng.choice(TAGS[vr]), vr) for vr in ("CS", "LO", "PN", "DA"))],
                      implicit, True)
        items += item(body, rng.random() < 0.5)
    return (0x00400100, "SQ", items, rng.random() < 0.5)


def mangle(rng: random.Random, data: bytes) -> bytes:
    """Cut short, or a VR that is not one."""
    if rng.random() < 0.5:
        return data[:rng.randrange(len(data) + 1)]
    at = rng.randrange(0, max(1, len(data) - 6))
    return data[:at + 4] + rng.choice([b"\x00\x01", b"zz", b"QQ"]) + data[at + 6:]


def identifier(rng: random.Random, implicit: bool, sequences: bool = False) -> bytes:
    charset = rng.choice(list(CHARSETS))
    codec = CHARSETS[charset]
    elements = []
    if charset is not None:
        elements.append((0x00080005, "CS", charset.encode()))
    for vr in rng.sample(VRS, rng.randint(1, 8)):
        tag = rng.choice(TAGS[vr])
        if vr in ("OB", "OW", "US or SS", "ox") or len(vr) != 2:
            continue
        elements.append((tag, vr, element(rng, vr, codec)))
    if rng.random() < 0.2 and not implicit:  # a private element, a VR pydicom must pick
        elements.append((0x00091010, "LO", b"CREATOR "))
        elements.append((0x00091011, rng.choice(["LO", "UN", "US"]), b"ab"))
    if sequences and rng.random() < 0.5:
        elements.append(sequence(rng, implicit, codec))
    return encode(elements, implicit, True)


