"""What a plugin author gets: options added to another plugin's command,
writers offered to every command, and plugins that import the public API
alone (the built-in find, and the echo and move examples)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import click
import pluggy
import pytest
from click.testing import CliRunner
from conftest import run_dimsekit

import dimsekit.plugins.find
from dimsekit.api import UsageError, Writer, added_options, hookimpl, option
from dimsekit.cli import build_cli
from dimsekit.cli.host import Host, PluginError

ROOT = Path(__file__).resolve().parents[1]


class HelloPlugin:
    @hookimpl
    def dimsekit_commands(self, host):
        @click.command("hello")
        @click.option("--shout", is_flag=True)
        @click.argument("who")
        def hello(who, shout):
            """Say hello."""
            seen = added_options()
            click.echo(f"hello {who.upper() if shout else who} {sorted(seen.items())}")

        return [hello]


class StampPlugin:
    """Adds --stamp to every command and remembers what it was given."""

    def __init__(self, refuse: bool = False):
        self.calls: list[tuple[str, dict]] = []
        self.refuse = refuse

    @hookimpl
    def dimsekit_add_options(self, command, host):
        return [option("--stamp", group="stamping", metavar="TEXT",
                       help="a stamp for the run")]

    @hookimpl
    def dimsekit_before_command(self, command, options):
        self.calls.append((command, dict(options)))
        if self.refuse and options.get("stamp") == "bad":
            raise UsageError("--stamp bad: no")


def fresh_cli(*plugins):
    host = Host(pluggy.PluginManager("dimsekit"))
    for i, plugin in enumerate(plugins):
        host.register(plugin, f"p{i}")
    return build_cli(host)


def test_an_added_option_reaches_its_plugin_and_not_the_command():
    stamp = StampPlugin()
    cli = fresh_cli(HelloPlugin(), stamp)
    result = CliRunner().invoke(cli, ["hello", "--stamp", "x1", "--shout", "you"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello YOU [('stamp', 'x1')]\n"
    assert stamp.calls == [("hello", {"stamp": "x1"})]
    # its default when not given
    CliRunner().invoke(cli, ["hello", "me"])
    assert stamp.calls[-1] == ("hello", {"stamp": None})
    assert "--stamp TEXT" in CliRunner().invoke(cli, ["hello", "--help"]).output


def test_before_command_may_refuse_the_command_line():
    cli = fresh_cli(HelloPlugin(), StampPlugin(refuse=True))
    result = CliRunner().invoke(cli, ["hello", "--stamp", "bad", "you"])
    assert isinstance(result.exception, UsageError)
    assert "hello" not in result.output


def test_an_added_option_that_the_command_has_is_an_error_naming_the_plugin():
    class Clash:
        @hookimpl
        def dimsekit_add_options(self, command, host):
            return [option("--shout", group="x", is_flag=True)]

    host = Host(pluggy.PluginManager("dimsekit"))
    host.register(HelloPlugin(), "hello")
    host.register(Clash(), "clash")
    with pytest.raises(PluginError, match="plugin 'clash' adds option --shout to command "
                                          "'hello'"):
        host.commands()


def test_an_added_option_works_on_the_real_find(dimsekit_make_scp):
    scp = dimsekit_make_scp()
    stamp = StampPlugin()
    cli = fresh_cli(dimsekit.plugins.find, stamp)
    result = CliRunner().invoke(cli, ["find", "-k", "QueryRetrieveLevel=PATIENT", "-k",
                                      "PatientID=", "--stamp", "nightly", "127.0.0.1",
                                      str(scp.port)])
    assert result.exit_code == 0, result.output
    assert "Find Response: 1 (Pending)" in result.output
    assert stamp.calls == [("find", {"stamp": "nightly"})]


class AnyWriter:
    @hookimpl
    def dimsekit_writers(self):
        return [Writer("count", "*", lambda stream, options: None, "just count")]


def test_a_writer_for_every_service_is_offered_by_find():
    host = Host(pluggy.PluginManager("dimsekit"))
    host.register(dimsekit.plugins.find, "find")
    host.register(AnyWriter(), "anywriter")
    assert [w.name for w in host.writers("find")][-1] == "count"
    assert [w.name for w in host.writers("move")] == ["count"]
    out = CliRunner().invoke(build_cli(host), ["find", "--help"]).output
    assert "count" in out.split("--format")[1].split("\n")[0] + out


# ---------------------------------------------------------------------------
# import discipline
# ---------------------------------------------------------------------------

PLUGINS = {
    "find": (ROOT / "src/dimsekit/plugins/find", "dimsekit.plugins.find"),
    "echo": (ROOT / "examples/dimsekit-echo/src/dimsekit_echo", "dimsekit_echo"),
    "move": (ROOT / "examples/dimsekit-move/src/dimsekit_move", "dimsekit_move"),
}


def _imports(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module)
    return found


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_a_plugin_imports_only_the_public_api(name):
    folder, package = PLUGINS[name]
    modules = _imports(folder)
    ours = {m for m in modules if m == "dimsekit" or m.startswith("dimsekit.")}
    assert ours - {m for m in ours if m.startswith(package)} <= {"dimsekit.api"}
    assert not [m for m in modules if m.startswith("pynetdicom._") or ".._" in m]
    if name in ("find", "move"):  # the Q/R commands need no pynetdicom of their own
        assert not [m for m in modules if m.split(".")[0] == "pynetdicom"]


def test_plugins_json_lists_the_move_example():
    pytest.importorskip("dimsekit_move")
    result = run_dimsekit("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["move"]["distribution"] == "dimsekit-move"
    assert rows["move"]["status"] == "loaded"
    assert rows["move"]["hooks"] == ["dimsekit_commands", "dimsekit_information_models"]
    helps = run_dimsekit("--help").stdout
    assert " move " in helps and " get " in helps


# ---------------------------------------------------------------------------
# the Q/R pieces a plugin builds a command from, against the recording peer
# ---------------------------------------------------------------------------


def test_a_find_built_from_public_pieces_alone(dimsekit_make_scp):
    from pydicom import Dataset

    from dimsekit.api import (
        COMMAND_FIELDS,
        FLAGS,
        MODELS,
        AssociationSettings,
        Exchange,
        accepted_context,
        accepted_negotiation,
        decoder,
        encode_identifier,
        find_request,
        negotiation_for,
        negotiation_items,
        open_association,
    )

    scp = dimsekit_make_scp()
    study = next(m for m in MODELS if m.name == "study")
    ext_neg, warnings = negotiation_for(FLAGS, [study], {"relational-query"})
    assert warnings == [] and ext_neg == {study.sop_class_uid: b"\x01\x00\x00\x00\x00"}
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = ""
    settings = AssociationSettings(peer="127.0.0.1", port=scp.port)
    with open_association(settings, [study.sop_class_uid],
                          ext_neg=negotiation_items(ext_neg)) as assoc:
        context_id, ts = accepted_context(assoc, study.sop_class_uid)
        assert accepted_negotiation(assoc) == {study.sop_class_uid: b"\x01\x00\x00\x00\x00"}
        decode = decoder(ts)
        ids = []
        with Exchange(assoc) as exchange:
            exchange.send(find_request(7, study.sop_class_uid, encode_identifier(query, ts)),
                          context_id)
            while True:
                message = exchange.receive()
                assert message is not None, exchange.failure
                assert message.command_field == COMMAND_FIELDS["C-FIND-RSP"]
                assert message.message_id_being_responded_to == 7
                if message.status != 0xFF00:
                    break
                ids.append(str(decode(message.dataset).PatientID))
    assert message.status == 0x0000
    # one match a study
    assert sorted(ids) == sorted(p.patient_id for p in _sample_patients() for _ in p.studies)
    (recorded,) = scp.associations
    assert recorded.extended_negotiation == {study.sop_class_uid: b"\x01\x00\x00\x00\x00"}


def _sample_patients():
    from realpeers import SAMPLE_PATIENTS

    return SAMPLE_PATIENTS


def test_status_tables_and_retrieve_contexts():
    from dimsekit.api import (
        GET_MODELS,
        PresentationContext,
        describe_status,
        retrieve_contexts,
        status_table,
    )

    assert describe_status(0xA801, status_table("move")) == (
        "0xA801 (Failure: Move destination unknown)")
    assert describe_status(0xB000, status_table("get")).startswith("0xB000 (Warning")
    with pytest.raises(ValueError, match="no status table for service 'nope'"):
        status_table("nope")
    study_get = next(m for m in GET_MODELS if m.name == "study")
    contexts = retrieve_contexts("get", study_get)
    assert contexts[0] == PresentationContext("1.2.840.10008.5.1.4.1.2.2.3")
    assert 100 < len(contexts) <= 128
    assert all(cx.scp_role and cx.scu_role is False for cx in contexts[1:])
    assert len(retrieve_contexts("move", study_get)) == 1
