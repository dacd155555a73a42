"""Helpers for tests that read dimsekit's output formats back."""

from __future__ import annotations

from xml.etree import ElementTree as ET


def xml_to_json_model(model: ET.Element) -> dict:
    """The inverse of PS3.19's mapping, to compare with the JSON model."""
    out = {}
    for attr in model.findall("DicomAttribute"):
        vr = attr.get("vr")
        entry: dict = {"vr": vr}
        if vr == "SQ":
            entry["Value"] = [xml_to_json_model(item) for item in attr.findall("Item")]
        elif vr == "PN":
            names = []
            for pn in attr.findall("PersonName"):
                name = {}
                for group in pn:
                    parts = {p.tag: p.text for p in group}
                    comps = [parts.get(k, "") for k in ("FamilyName", "GivenName",
                             "MiddleName", "NamePrefix", "NameSuffix")]
                    name[group.tag] = "^".join(comps).rstrip("^")
                names.append(name)
            if names:
                entry["Value"] = names
        elif attr.find("InlineBinary") is not None:
            entry["InlineBinary"] = attr.find("InlineBinary").text
        else:
            values = [v.text for v in attr.findall("Value")]
            if values:
                entry["Value"] = values
        out[attr.get("tag")] = entry
    return out


def json_model_as_text(model: dict) -> dict:
    """JSON model with every plain value as text (XML carries text)."""
    out = {}
    for tag, entry in model.items():
        entry = dict(entry)
        if entry.get("vr") == "SQ" and "Value" in entry:
            entry["Value"] = [json_model_as_text(i) for i in entry["Value"]]
        elif entry.get("vr") != "PN" and "Value" in entry:
            entry["Value"] = [None if v is None else str(v) for v in entry["Value"]]
        out[tag] = entry
    return out
