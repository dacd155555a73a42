"""Run the ``dimsekit`` command line in tests: in-process or as a subprocess.

:class:`DimsekitRunner` builds the CLI from a plugin manager of your choosing
(a fresh one holding only your plugin, or the installed entry points) and
runs it in-process the way the console script does: ``@file`` expansion,
``--arguments``, one ``E:`` line per error and the documented exit codes
(it goes through :func:`dimsekit.cli.main`).  stdout, stderr and the
environment are isolated with click's test runner::

    runner = DimsekitRunner(plugins={"echo": dimsekit_echo})
    result = runner("echo", "127.0.0.1", str(scp.port))
    assert result.returncode == 0, result.stderr

:func:`run_dimsekit` runs ``python -m dimsekit`` as a subprocess instead:
slower, but nothing is shared with the test process (logging, warnings
filters, an in-process peer's pynetdicom log lines under ``-v``).

Both return a :class:`Result`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pluggy

from dimsekit.cli.host import PROJECT, Host

__all__ = ["DimsekitRunner", "Result", "run_dimsekit"]

#: how the subprocess runner starts dimsekit: the test's own interpreter
DIMSEKIT_COMMAND = (sys.executable, "-m", "dimsekit")

#: loggers whose levels a command changes (restored after each in-process run)
_LOGGERS = ("dimsekit", "pynetdicom", "pydicom")


@dataclass
class Result:
    """What one run of ``dimsekit`` produced."""

    returncode: int
    stdout: str
    stderr: str
    #: in-process runs only: an exception that escaped ``main`` (a bug, or
    #: ``-d``, which lets an internal error through with its traceback)
    exception: BaseException | None = None

    @property
    def stderr_lines(self) -> list[str]:
        """The non-blank lines of stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def run_dimsekit(*args: Any, env: Mapping[str, str] | None = None,
                 cwd: str | Path | None = None, timeout: float = 60,
                 input: str | None = None) -> Result:
    """Run ``python -m dimsekit ARGS`` as a subprocess and wait for it.

    ``env`` is added to the current environment.  ``cwd`` defaults to the
    current directory: pass a temporary one (the ``dimsekit_subprocess``
    fixture does) so a test never depends on it nor writes into it.
    """
    proc = subprocess.run(
        [*DIMSEKIT_COMMAND, *map(str, args)], capture_output=True, text=True,
        encoding="utf-8", errors="replace", env={**os.environ, **(env or {})},
        cwd=str(cwd) if cwd is not None else None, timeout=timeout,
        input=input, stdin=None if input is not None else subprocess.DEVNULL,
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _plugin_name(plugin: Any) -> str:
    name = getattr(plugin, "__name__", None) or type(plugin).__name__
    return str(name).rsplit(".", 1)[-1]


class DimsekitRunner:
    """Runs the ``dimsekit`` CLI in-process, built from a given plugin manager.

    Parameters
    ----------
    host:
        A :class:`dimsekit.api.Host`, or a ``pluggy.PluginManager`` (project
        ``"dimsekit"``; dimsekit's hook specs are added), or ``None`` for a
        fresh, empty manager.
    plugins:
        Plugins to register on it: a mapping ``{name: plugin}`` or an
        iterable of plugins (named after their module or class).  A plugin
        that fails to register (e.g. a misspelt hook) raises ``ValueError``
        here instead of being skipped with a warning as ``dimsekit`` does:
        a test should fail loudly.
    entry_points:
        Also load the installed ``dimsekit`` entry-point group, as the
        ``dimsekit`` console script does (honouring ``DIMSEKIT_LOAD_PLUGINS``).
    cwd:
        Directory to run in (default: stay where the test is); ``@file``
        arguments and relative paths are resolved there.
    env:
        Environment variables set during every run.

    Runs share the test's process: a command's logging set-up stays
    installed (the levels and warnings filters are restored after each run),
    and under ``-v`` an in-process peer's pynetdicom log lines show up in
    stderr too.  Use :func:`run_dimsekit` when that matters.
    """

    def __init__(self, host: Host | pluggy.PluginManager | None = None, *,
                 plugins: Mapping[str, Any] | Iterable[Any] = (),
                 entry_points: bool = False, cwd: str | Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        if not isinstance(host, Host):
            host = Host(host if host is not None else pluggy.PluginManager(PROJECT))
        self.host = host
        self.cwd = cwd
        self.env = dict(env or {})
        named = plugins.items() if isinstance(plugins, Mapping) else (
            (_plugin_name(p), p) for p in plugins)
        for name, plugin in named:
            if not host.register(plugin, name):
                raise ValueError(f"plugin {name!r} did not register: "
                                 f"{host.plugins[name].status}")
        if entry_points:
            host.load_entry_points()

    @property
    def cli(self):
        """A fresh ``dimsekit`` click group for this runner's host."""
        from dimsekit.cli import build_cli

        return build_cli(self.host)

    def __call__(self, *args: Any, **kwargs: Any) -> Result:
        """Same as :meth:`invoke`."""
        return self.invoke(*args, **kwargs)

    def invoke(self, *args: Any, input: str | bytes | None = None,
               env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
               prog_name: str = "dimsekit") -> Result:
        """Run ``dimsekit ARGS``; return its exit status, stdout and stderr."""
        from click.testing import CliRunner

        argv = [str(a) for a in args]
        exception: BaseException | None = None
        code = 0
        runner = CliRunner()
        with self._state_restored(), _chdir(cwd if cwd is not None else self.cwd), \
                runner.isolation(input=input, env={**self.env, **(env or {})}) as streams:
            stdout, stderr = streams[0], streams[1]
            try:
                self._main(argv, prog_name)
            except SystemExit as exc:
                code = _exit_status(exc.code)
            except BaseException as exc:  # noqa: BLE001 - what `python -m` would show
                exception = exc
                code = 1
                sys.stderr.write("".join(traceback.format_exception(exc)))
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
            out = stdout.getvalue().decode("utf-8", "replace")
            err = stderr.getvalue().decode("utf-8", "replace")
        return Result(code, out, err, exception)

    def _main(self, argv: list[str], prog_name: str) -> None:
        """:func:`dimsekit.cli.main` on this runner's host."""
        from dimsekit.cli import main

        main(argv, prog_name=prog_name, host=self.host)

    @staticmethod
    @contextlib.contextmanager
    def _state_restored() -> Iterator[None]:
        levels = {name: logging.getLogger(name).level for name in _LOGGERS}
        try:
            with warnings.catch_warnings():  # -q/-v set warnings filters
                yield
        finally:
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _chdir(path: str | Path | None) -> Iterator[None]:
    """``contextlib.chdir`` (Python >= 3.11), and nothing for ``None``."""
    if path is None:
        yield
        return
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _exit_status(code: Any) -> int:
    """The process exit status ``sys.exit(code)`` would give."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1
