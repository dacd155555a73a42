"""The ``dimsekit`` command line, built from a plugin manager.

Nothing is registered as an import side effect: :func:`build_cli` makes a
click group from a :class:`~dimsekit.host.Host`, so a test can hand it a
fresh manager holding a plugin of its own.  :func:`main` is the console
script: argv pre-processing, plugin loading, exit codes, one-line errors.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import NoReturn, Sequence

import click

from dimsekit import __version__, argv as argv_mod
from dimsekit.errors import DimsekitError, ExitCode
from dimsekit.host import Host, PluginError
from dimsekit.logs import current_level

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class _PipeClosed(Exception):
    """A BrokenPipeError (``error``), carried past click, which turns EPIPE
    into exit 1 without a word.  :func:`main` decides whose pipe it was."""

    def __init__(self, error: BrokenPipeError):
        super().__init__(error)
        self.error = error


class _LazyGroup(click.Group):
    """A group whose commands come from the host, asked only when needed."""

    def make_context(self, *args, **kwargs) -> click.Context:
        try:  # --help and --version print while the group's options are parsed
            return super().make_context(*args, **kwargs)
        except BrokenPipeError as exc:
            raise _PipeClosed(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _PipeClosed(exc) from None

    def __init__(self, *args, host: Host, **kwargs):
        super().__init__(*args, **kwargs)
        self.host = host
        self._plugin_commands: dict[str, click.Command] | None = None

    def _from_plugins(self) -> dict[str, click.Command]:
        if self._plugin_commands is None:
            self._plugin_commands = self.host.commands()
        return self._plugin_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self._from_plugins()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands.get(name) or self._from_plugins().get(name)


def _plugins_command(host: Host) -> click.Command:
    @click.command("plugins", context_settings=CONTEXT_SETTINGS)
    @click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
    def plugins(as_json: bool) -> None:
        """List the installed plugins: name, version, hooks, status."""
        rows = [info.as_dict() for info in host.plugins.values()]
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        for row in rows:
            version = row["version"] or "-"
            click.echo(f"{row['name']} {version} [{row['status']}]")
            click.echo(f"    hooks: {', '.join(row['hooks']) or '-'}")

    return plugins


def build_cli(host: Host | None = None) -> click.Group:
    """The ``dimsekit`` group for ``host`` (default: entry points loaded)."""
    if host is None:
        host = Host()
        host.load_entry_points()

    group = _LazyGroup(
        name="dimsekit",
        host=host,
        context_settings=CONTEXT_SETTINGS,
        help="DICOM network clients (SCUs). Commands come from plugins; "
             "`dimsekit plugins` lists them.",
    )
    group = click.version_option(__version__, "--version", prog_name="dimsekit",
                                 message="%(prog)s %(version)s")(group)
    group.add_command(_plugins_command(host))
    return group


def _internal_error(exc: BaseException, args: Sequence[str]) -> NoReturn:
    """A bug: one line, the traceback with -d; exit 70."""
    if _wants_debug(args):
        raise exc
    _error(f"internal error: {type(exc).__name__}: {exc} (run with -d for details)", args)
    sys.exit(70)


def _stdout_broken() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone: then a
    BrokenPipeError was about stdout, and not, say, about a plugin's socket."""
    import select

    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP)
                   for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no fd 1 (click's test runner)
        return False


def discard_stdout() -> None:
    """Point fd 1 at /dev/null once stdout's reader has gone: what is still
    buffered for the closed pipe, and whatever is written after, goes
    nowhere instead of raising again (public as ``dimsekit.api``'s)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no fd 1 (click's test runner)
        pass


def _wants_debug(args: Sequence[str]) -> bool:
    if "-d" in args or "--debug" in args:
        return True
    return current_level() <= logging.DEBUG


def _error(message: str, args: Sequence[str]) -> None:
    if "-q" in args or "--quiet" in args:
        return
    try:
        print(f"E: {message}", file=sys.stderr)
    except (OSError, ValueError, AttributeError):  # stderr closed: the code still tells
        pass


def main(argv: Sequence[str] | None = None, prog_name: str = "dimsekit", *,
         host: Host | None = None) -> None:
    """Console entry point: run the CLI and exit with the documented code.

    ``host`` replaces the entry-point plugins (tests hand in their own).
    """
    raw = list(sys.argv[1:] if argv is None else argv)
    args: list[str] = raw
    try:
        args = argv_mod.expand(raw)
        if "--arguments" in args:
            argv_mod.print_arguments(prog_name, args)
        cli = build_cli(host)
        rv = cli.main(args=args, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.Exit as exc:  # --help, --version
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # one line, not click's usage block: scripts read the last line
        hint = ""
        ctx = getattr(exc, "ctx", None)
        if ctx is not None:
            hint = f" (see '{ctx.command_path} --help')"
        _error(f"{exc.format_message()}{hint}", args)
        sys.exit(ExitCode.USAGE)
    except click.Abort:
        _error("interrupted", args)
        sys.exit(ExitCode.INCOMPLETE)
    except DimsekitError as exc:
        if _wants_debug(args):
            import traceback

            traceback.print_exc()
        _error(exc.message, args)
        sys.exit(exc.exit_code)
    except (BrokenPipeError, _PipeClosed) as exc:
        if _stdout_broken():
            # the reader went away (e.g. `| head`): it has what it wanted
            discard_stdout()
            sys.exit(ExitCode.OK)
        _internal_error(exc.error if isinstance(exc, _PipeClosed) else exc, args)
    except Exception as exc:  # noqa: BLE001 - a bug: one line, traceback with -d
        _internal_error(exc, args)
    sys.exit(int(rv or 0))
