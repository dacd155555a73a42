"""``dimsekit peers``: the configured peers, and ``peers check``: a C-ECHO
to each.  Host commands: every plugin's command already takes a peer's
name as PEER (:func:`dimsekit.cli.command._named_peer`)."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from dimsekit.errors import DimsekitError, ExitCode

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _config() -> Any:
    from dimsekit.config import load_config

    config = load_config()
    for warning in config.warnings:
        click.echo(f"W: {warning}", err=True)
    return config


def _row(entry: Any) -> dict[str, Any]:
    v = entry.values
    return {"name": entry.name, "address": f"{entry.host}:{entry.port}",
            "called_aet": v.get("called_aet", "ANY-SCP"),
            "calling_aet": v.get("calling_aet"),
            "tls": entry.tls or "no"}


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    cells = [[title for _, title in columns]]
    cells += [[_cell(r[key]) for key, _ in columns] for r in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
                     for line in cells)


_LIST = [("name", "NAME"), ("address", "ADDRESS"), ("called_aet", "CALLED AE"),
         ("calling_aet", "CALLING AE"), ("tls", "TLS")]
_CHECK = [("name", "NAME"), ("address", "ADDRESS"), ("called_aet", "CALLED AE"),
          ("tls", "TLS"), ("result", "RESULT"), ("ms", "MS")]


def peers_command() -> click.Group:
    @click.group("peers", invoke_without_command=True, context_settings=CONTEXT_SETTINGS)
    @click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
    @click.pass_context
    def peers(ctx: click.Context, as_json: bool) -> None:
        """List the peers of the configuration file (never a password).

        The file: $DIMSEKIT_CONFIG, else $XDG_CONFIG_HOME/dimsekit/config.toml,
        else ~/.config/dimsekit/config.toml; one [peers.NAME] table a peer.
        Any command takes NAME in place of PEER PORT (docs/peers.md).
        """
        if ctx.invoked_subcommand is not None:
            return
        config = _config()
        rows = [_row(e) for e in config.peers.values()]
        if as_json:
            click.echo(json.dumps([{**r, "settings": e.shown()} for r, e in
                                   zip(rows, config.peers.values(), strict=True)], indent=2))
        elif rows:
            click.echo(_table(rows, _LIST))
        else:
            click.echo(f"no peers configured in {config.path}", err=True)

    @peers.command("check", context_settings=CONTEXT_SETTINGS)
    @click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
    @click.argument("names", nargs=-1, metavar="[NAME]...")
    def check(names: tuple[str, ...], as_json: bool) -> int:
        """Send a C-ECHO to each configured peer (or those NAMEd): a table of
        name, address, AE, TLS, result and round-trip ms.  Exit 0 when every
        peer answered Success, 3 when one did not, 2 for an unknown NAME."""
        import dimsekit

        config = _config()
        entries = [config.peer(n) for n in names] if names else list(config.peers.values())
        if not entries:
            click.echo(f"no peers configured in {config.path}", err=True)
            return ExitCode.USAGE
        rows, failed = [], 0
        for entry in entries:
            row = _row(entry)
            started = time.monotonic()
            try:
                dimsekit.Peer(entry.host, entry.port, **entry.peer_kwargs()).echo()
                row["result"] = "ok"
            except DimsekitError as exc:
                row["result"] = str(exc)
                failed += 1
            row["ms"] = round((time.monotonic() - started) * 1000, 1)
            rows.append(row)
        if as_json:
            click.echo(json.dumps(rows, indent=2))
        else:
            click.echo(_table(rows, _CHECK))
        return ExitCode.NO_ASSOCIATION if failed else ExitCode.OK

    return peers
