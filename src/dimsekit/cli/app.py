"""The ``dimsekit`` command line, built from a plugin manager.

Nothing is registered as an import side effect: :func:`build_cli` makes a
click group from a :class:`~dimsekit.cli.host.Host`, so a test can hand it a
fresh manager holding a plugin of its own.  :func:`main` is the console
script: argv pre-processing, plugin loading, exit codes, one-line errors.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from dimsekit.cli import argv as argv_mod
from dimsekit.cli.host import Host
from dimsekit.cli.logs import current_level
from dimsekit.cli.options import version_option
from dimsekit.errors import DimsekitError, ExitCode, Interrupted, Terminated

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
        except KeyboardInterrupt as exc:  # before click prints a blank line for it
            raise Interrupted(getattr(exc, "how", None) or "interrupted") from None

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        if not getattr(command, "defer_gc", False):
            import gc

            gc.enable()  # off for the start-up (main); the command's run needs it
        return name, command, rest

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
            import json

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
    group = version_option(group)
    group.add_command(_plugins_command(host))
    from dimsekit.cli.peers import peers_command

    group.add_command(peers_command())
    group.add_command(_completion_command())
    return group


def _completion_command() -> click.Command:
    @click.command("completion", context_settings=CONTEXT_SETTINGS)
    @click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
    @click.pass_context
    def completion(ctx: click.Context, shell: str) -> None:
        """Print the shell completion script for SHELL (click's).

        \b
        bash:  eval "$(dimsekit completion bash)"   (in ~/.bashrc)
        zsh:   eval "$(dimsekit completion zsh)"    (in ~/.zshrc)
        fish:  dimsekit completion fish > ~/.config/fish/completions/dimsekit.fish

        Commands, options, --format values, configured peer names (PEER)
        and -k keywords complete.
        """
        from click.shell_completion import get_completion_class

        cls = get_completion_class(shell)
        assert cls is not None  # click knows the three
        root = ctx.find_root()
        name = root.info_name or "dimsekit"
        var = f"_{name}_COMPLETE".replace("-", "_").upper()
        click.echo(cls(root.command, {}, name, var).source(), nl=False)

    return completion


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
    # stderr closed: the code still tells
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(f"E: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None, prog_name: str = "dimsekit", *,
         host: Host | None = None) -> None:
    """Console entry point: run the CLI and exit with the documented code.

    ``host`` replaces the entry-point plugins (tests hand in their own).
    """
    if argv is not None:  # called in-process (tests): the caller's process
        _run(argv, prog_name, host)
        return
    import gc
    import signal
    import threading

    # the imports of a run allocate much and free little: no cyclic GC
    # until the command starts (see DimsekitCommand's defer_gc)
    gc.disable()

    code: int | str | None = 0
    # the process is dimsekit's: SIGTERM aborts the run (exit 130), and
    # no library thread may keep it alive after the run
    signal.signal(signal.SIGTERM, _terminate)
    threading.excepthook = _thread_failed
    try:
        _run(argv, prog_name, host)
    except SystemExit as exc:
        code = exc.code
    _no_lingering_threads(code)
    sys.exit(code)


def _thread_failed(args: Any) -> None:
    """An exception that ends a library's background thread (pynetdicom's
    reader, after the run gave up on a peer): the run's own outcome says
    what went wrong; the traceback is for -d."""
    logging.getLogger("dimsekit").debug(
        "thread %s ended with %s: %s", getattr(args.thread, "name", "?"),
        args.exc_type.__name__, args.exc_value,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM: abort the association at once (no C-CANCEL grace)."""
    raise Terminated("terminated (SIGTERM)")


def _no_lingering_threads(code: int | str | None, grace: float = 2.0) -> None:
    """No thread may keep the process alive after the run: wait briefly for
    any that is not a daemon (a library's reader on a dead socket), then
    leave without it, outputs flushed."""
    import os
    import threading
    import time

    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() and not t.daemon and t is not threading.main_thread()
           for t in threading.enumerate()):
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def _run(argv: Sequence[str] | None, prog_name: str, host: Host | None) -> None:
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
    except (click.Abort, KeyboardInterrupt) as exc:  # before any query ran
        cause = exc.__context__ if isinstance(exc, click.Abort) else exc
        how = getattr(cause, "how", None) or "interrupted"
        _error(how, args)
        sys.exit(ExitCode.INTERRUPTED)
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
