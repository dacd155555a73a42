"""PS3.19 Native DICOM Model XML.

``--format xml`` and ``-Xs FILE`` write one well-formed document: a
``<NativeDicomModels>`` root holding one ``<NativeDicomModel>`` per
response (the Native model itself describes one dataset).  ``-Xx`` writes
one ``<NativeDicomModel>`` document per response file.  Built from the
DICOM JSON model, so both formats say the same thing.
"""

from __future__ import annotations

import re
from typing import Any, BinaryIO
from xml.etree import ElementTree as ET

from dimsekit.plugins.find.jsonfmt import dicom_json

_PN_COMPONENTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")
# characters XML 1.0 cannot carry, even escaped
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _keyword(tag: str) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(int(tag, 16))


def _private_creator(tag: str, model: dict) -> str | None:
    """PS3.19's privateCreator of a private data element (gggg,xxyy): the
    value of its Private Creator (gggg,00xx) in the same data set."""
    if not int(tag[:4], 16) & 1 or int(tag[4:], 16) < 0x1000:
        return None
    values = model.get(f"{tag[:4]}00{tag[4:6]}", {}).get("Value") or []
    return str(values[0]) if values else None


def _fill(parent: ET.Element, model: dict) -> None:
    for tag, attr in model.items():
        vr = attr.get("vr", "UN")
        el = ET.SubElement(parent, "DicomAttribute", {"tag": tag, "vr": vr})
        keyword = _keyword(tag)
        if keyword:
            el.set("keyword", keyword)
        creator = _private_creator(tag, model)
        if creator:
            el.set("privateCreator", creator)
        values = attr.get("Value", [])
        if vr == "SQ":
            for number, item in enumerate(values, 1):
                _fill(ET.SubElement(el, "Item", number=str(number)), item or {})
        elif vr == "PN":
            for number, name in enumerate(values, 1):
                pn = ET.SubElement(el, "PersonName", number=str(number))
                for group in ("Alphabetic", "Ideographic", "Phonetic"):
                    if not (name or {}).get(group):
                        continue
                    g = ET.SubElement(pn, group)
                    for part, text in zip(_PN_COMPONENTS, name[group].split("^"), strict=False):
                        if text:
                            ET.SubElement(g, part).text = _text(text)
        elif "InlineBinary" in attr:
            ET.SubElement(el, "InlineBinary").text = attr["InlineBinary"]
        elif "BulkDataURI" in attr:
            ET.SubElement(el, "BulkData", uri=attr["BulkDataURI"])
        else:
            for number, value in enumerate(values, 1):
                v = ET.SubElement(el, "Value", number=str(number))
                if value is not None:
                    v.text = _text(value)


def native_model(ds: Any) -> ET.Element:
    root = ET.Element("NativeDicomModel", {"xml:space": "preserve"})
    _fill(root, dicom_json(ds))
    return root


def native_xml(ds: Any) -> bytes:
    """One response as a standalone PS3.19 document."""
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            + ET.tostring(native_model(ds), encoding="utf-8", xml_declaration=False)
            + b"\n")


class XmlWriter:
    """All responses in one document, streamed one ``NativeDicomModel`` at a time."""

    def __init__(self, stream: BinaryIO, options: dict[str, Any]):
        self.stream = stream

    def begin(self) -> None:
        self.stream.write(b'<?xml version="1.0" encoding="UTF-8"?>\n<NativeDicomModels>\n')

    def write(self, ds: Any, info: Any) -> None:
        self.stream.write(ET.tostring(native_model(ds), encoding="utf-8",
                                      xml_declaration=False) + b"\n")

    def end(self) -> None:
        self.stream.write(b"</NativeDicomModels>\n")
        self.stream.flush()
