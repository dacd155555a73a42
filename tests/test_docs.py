"""The docs stay true: every hook documented and tested, every find option
documented, quoted --help texts equal to the CLI's, and the site builds
with warnings as errors.

``python tests/test_docs.py --update`` rewrites the quoted --help blocks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HELP_BLOCK = re.compile(r"<!-- help: (?P<cmd>[^>]+?) -->\n```text\n(?P<body>.*?)```", re.S)
HELP_ENV = {"COLUMNS": "100", "DIMSEKIT_LOAD_PLUGINS": ""}


def hook_names() -> list[str]:
    from dimsekit import hookspecs

    return sorted(n for n in dir(hookspecs) if n.startswith("dimsekit_"))


def render_help(cmd: str) -> str:
    words = cmd.split()
    assert words[0] == "dimsekit"
    proc = subprocess.run([sys.executable, "-m", "dimsekit", *words[1:]],
                          capture_output=True, text=True,
                          env={**os.environ, **HELP_ENV}, check=True)
    return proc.stdout


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_has_a_reference_section(hook):
    text = (DOCS / "hooks.md").read_text()
    assert f"\n## {hook}\n" in text, f"docs/hooks.md has no section for {hook}"


@pytest.mark.parametrize("hook", hook_names())
def test_every_hook_is_exercised_by_a_test(hook):
    test_files = [*ROOT.glob("tests/test_*.py"), *ROOT.glob("examples/*/tests/test_*.py")]
    users = [p.name for p in test_files
             if p.name != "test_docs.py" and hook in p.read_text(encoding="utf-8")]
    # find's own implementations are exercised by every find test; a test
    # must still implement or call the hook by name
    assert users, f"no test implements or calls {hook}"


def find_option_spellings() -> list[str]:
    import click

    from dimsekit.cli import build_cli

    cli = build_cli()
    ctx = click.Context(cli)
    command = cli.get_command(ctx, "find")
    out = []
    for param in command.get_params(ctx):
        if isinstance(param, click.Option):
            out.extend(param.opts + param.secondary_opts + list(getattr(param, "aliases", ())))
    return out


def test_every_find_option_is_in_the_user_guide():
    guide = (DOCS / "find.md").read_text()
    missing = [o for o in find_option_spellings() if f"`{o}`" not in guide
               and f"`{o} " not in guide and f", `{o}" not in guide]
    assert not missing, f"docs/find.md does not mention {missing}"


def quoted_help_blocks():
    for path in sorted(DOCS.glob("*.md")):
        for match in HELP_BLOCK.finditer(path.read_text()):
            yield path, match


def test_docs_quote_at_least_one_help_text():
    assert any(True for _ in quoted_help_blocks())


@pytest.mark.parametrize("path, match", list(quoted_help_blocks()),
                         ids=lambda v: getattr(v, "name", None) or v.group("cmd"))
def test_quoted_help_matches_the_cli(path, match):
    assert match.group("body") == render_help(match.group("cmd")), (
        f"{path.name}: the quoted `{match.group('cmd')}` is stale; "
        "run `python tests/test_docs.py --update`")


def test_site_builds_with_warnings_as_errors(tmp_path):
    pytest.importorskip("mkdocs") if os.environ.get("CI") != "true" else None
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "site" / "find" / "index.html").exists()


def _update() -> None:
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        new = HELP_BLOCK.sub(lambda m: f"<!-- help: {m.group('cmd')} -->\n```text\n"
                             f"{render_help(m.group('cmd'))}```", text)
        if new != text:
            path.write_text(new)
            print(f"updated {path.relative_to(ROOT)}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        _update()


def test_the_exchange_example_in_the_plugin_guide_runs():
    """docs/plugins.md's C-MOVE sketch, run as written against a pynetdicom
    C-MOVE peer: one that has nothing to move (Success at once) and one
    that answers a failure."""
    import io

    from pydicom import Dataset
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

    from dimsekit.api import AssociationSettings, PeerFailure

    text = (DOCS / "plugins.md").read_text(encoding="utf-8")
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", text, re.S)
               if "def run_move" in block]
    namespace: dict = {}
    exec(compile(code, "docs/plugins.md", "exec"), namespace)
    answers = []

    def handle(event):
        if answers.pop(0) == "nothing":
            yield "127.0.0.1", 1  # where to send: never used, nothing is sent
            yield 0
        else:
            yield None, None  # pynetdicom answers 0xA801, Move Destination unknown

    peer = AE("MOVESCP")
    peer.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
    server = peer.start_server(("127.0.0.1", 0), block=False,
                               evt_handlers=[(evt.EVT_C_MOVE, handle)])
    try:
        identifier = Dataset()
        identifier.QueryRetrieveLevel = "STUDY"
        identifier.StudyInstanceUID = "1.2.3"
        settings = AssociationSettings(peer="127.0.0.1", port=server.server_address[1],
                                       called_aet="MOVESCP")
        out = io.StringIO()
        answers.append("nothing")
        assert namespace["run_move"](settings, identifier, "STORESCP", out) == 0
        assert out.getvalue() == "done: 0x0000 (Success)\n"
        answers.append("failure")
        with pytest.raises(PeerFailure, match="peer answered 0xA801"):
            namespace["run_move"](settings, identifier, "NOWHERE", io.StringIO())
    finally:
        server.shutdown()
