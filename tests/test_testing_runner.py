"""dimsekit.testing's CLI runners: DimsekitRunner (in-process, the CLI built
from a given plugin manager) and run_dimsekit (a subprocess)."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import click
import pluggy
import pytest

from dimsekit import __version__
from dimsekit.api import (
    DimsekitCommand,
    PeerFailure,
    get_logger,
    hookimpl,
    logging_options,
)
from dimsekit.cli.host import Host
from dimsekit.testing import DimsekitRunner, Result, run_dimsekit


class Hello:
    """A plugin whose commands exercise the host's error handling."""

    @hookimpl
    def dimsekit_commands(self, host):
        @click.command("hello", cls=DimsekitCommand)
        @logging_options
        @click.argument("who")
        @click.option("--fail", type=int, help="raise PeerFailure")
        @click.option("--crash", is_flag=True, help="raise a bug")
        def hello(who, fail, crash):
            get_logger("hello").info("about to greet")
            if crash:
                raise RuntimeError("a bug")
            if fail:
                raise PeerFailure(f"peer said {fail}")
            click.echo(f"hello {who}")

        @click.command("cat")
        @click.argument("path")
        def cat(path):
            with open(path, encoding="utf-8") as fh:
                click.echo(fh.read(), nl=False)

        @click.command("env")
        def env():
            import os

            click.echo(os.environ.get("HELLO_WHO", "-"))

        return [hello, cat, env]


class Misspelt:
    @hookimpl
    def dimsekit_comands(self, host):  # noqa: D401 - one m short on purpose
        return []


def test_builds_the_cli_from_the_given_plugins_only():
    runner = DimsekitRunner(plugins={"hello": Hello()})
    result = runner("hello", "world")
    assert isinstance(result, Result)
    assert (result.returncode, result.stdout, result.stderr) == (0, "hello world\n", "")
    assert "find" not in runner("--help").stdout
    assert set(runner.host.plugins) == {"hello"}


def test_accepts_a_plugin_manager_a_host_or_a_list_of_plugins():
    pm = pluggy.PluginManager("dimsekit")
    pm.register(Hello(), name="hello")
    assert DimsekitRunner(pm)("hello", "pm").stdout == "hello pm\n"
    host = Host()
    host.register(Hello(), "hello")
    assert DimsekitRunner(host)("hello", "host").stdout == "hello host\n"
    runner = DimsekitRunner(plugins=[Hello()])
    assert list(runner.host.plugins) == ["Hello"]


def test_exit_codes_and_one_line_errors_as_the_console_script_gives_them():
    runner = DimsekitRunner(plugins=[Hello()])
    failed = runner("hello", "--fail", "7", "x")
    assert (failed.returncode, failed.stderr_lines) == (1, ["E: peer said 7"])
    usage = runner("hello")
    assert usage.returncode == 2
    assert usage.stderr_lines == [
        "E: Missing argument 'WHO'. (see 'dimsekit hello --help')"]
    bug = runner("hello", "--crash", "x")
    assert bug.returncode == 70
    assert bug.stderr_lines == [
        "E: internal error: RuntimeError: a bug (run with -d for details)"]
    assert bug.exception is None


def test_debug_lets_a_bug_through_with_its_traceback():
    result = DimsekitRunner(plugins=[Hello()])("hello", "-d", "--crash", "x")
    assert result.returncode == 1
    assert isinstance(result.exception, RuntimeError)
    assert "Traceback" in result.stderr and "RuntimeError: a bug" in result.stderr


def test_logs_go_to_the_captured_stderr_and_levels_are_restored():
    ours = logging.getLogger("dimsekit")
    before = ours.level
    filters = list(warnings.filters)
    result = DimsekitRunner(plugins=[Hello()])("hello", "-v", "x")
    assert result.stderr_lines == ["I: about to greet"]
    assert ours.level == before
    assert warnings.filters == filters


def test_argument_files_env_and_cwd(tmp_path):
    (tmp_path / "args.txt").write_text("hello 'from a file'\n")
    (tmp_path / "data.txt").write_text("some data\n")
    runner = DimsekitRunner(plugins=[Hello()], cwd=tmp_path, env={"HELLO_WHO": "env"})
    assert runner("@args.txt").stdout == "hello from a file\n"
    assert runner("cat", "data.txt").stdout == "some data\n"
    assert runner("env").stdout == "env\n"
    assert runner("env", env={"HELLO_WHO": "call"}).stdout == "call\n"


def test_a_plugin_that_does_not_register_fails_loudly():
    with pytest.raises(ValueError, match=r"plugin 'bad' did not register: failed: "
                                         r".*dimsekit_comands"):
        DimsekitRunner(plugins={"bad": Misspelt()})


def test_entry_points_loads_what_is_installed():
    runner = DimsekitRunner(entry_points=True)
    assert runner.host.plugins["find"].status == "loaded"
    result = runner("find", "--help")
    assert result.returncode == 0 and "Usage: dimsekit find" in result.stdout


def test_run_dimsekit_is_a_subprocess_in_the_given_cwd(tmp_path):
    (tmp_path / "args.txt").write_text("--version\n")
    result = run_dimsekit("@args.txt", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == f"dimsekit {__version__}"


def test_importing_the_testing_package_and_pytest_plugin_is_light():
    code = (
        "import sys, dimsekit.testing, dimsekit.testing.pytest_plugin\n"
        "from dimsekit.testing import DimsekitRunner\n"
        "print([m for m in ('pydicom', 'pynetdicom') if m in sys.modules])\n"
        "from dimsekit.testing import QuerySCP\n"
        "print('pynetdicom' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout == "[]\nTrue\n", proc.stderr
