"""dimsekit's pytest plugin (entry point pytest11: dimsekit): its fixtures
as a plugin author's test suite sees them, run with pytester."""

from __future__ import annotations

import pytest

import dimsekit.testing.pytest_plugin as plugin_module

pytest_plugins = ["pytester"]

AUTHOR_TESTS = '''
import click
import pytest

from dimsekit import __version__
from dimsekit.api import hookimpl

STARTED = []


class Ping:
    @hookimpl
    def dimsekit_commands(self, host):
        @click.command("ping")
        @click.argument("port", type=int)
        def ping(port):
            from pynetdicom import AE

            ae = AE(ae_title="PINGER")
            ae.add_requested_context("1.2.840.10008.1.1")
            assoc = ae.associate("127.0.0.1", port)
            status = assoc.send_c_echo()
            assoc.release()
            click.echo(f"status {status.Status}")

        return [ping]


@pytest.fixture
def dimsekit_plugins():
    return {"ping": Ping()}


def test_in_process_cli_against_the_recording_peer(dimsekit_cli, dimsekit_scp, tmp_path):
    STARTED.append(dimsekit_scp)
    assert dimsekit_cli.cwd == tmp_path
    assert list(dimsekit_cli.host.plugins) == ["ping"]
    result = dimsekit_cli("ping", dimsekit_scp.port)
    assert (result.returncode, result.stdout) == (0, "status 0\\n")
    assert [e.calling_ae for e in dimsekit_scp.echoes] == ["PINGER"]


def test_every_peer_is_stopped_after_its_test(dimsekit_make_scp):
    assert not STARTED[0].is_running
    a, b = dimsekit_make_scp(ae_title="A"), dimsekit_make_scp(ae_title="B")
    assert a.port != b.port and a.is_running and b.is_running


def test_subprocess_runs_the_installed_dimsekit(dimsekit_subprocess, tmp_path):
    (tmp_path / "args").write_text("--version")
    result = dimsekit_subprocess("@args")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0] == f"dimsekit {__version__}"
'''


def test_the_plugin_is_registered_by_its_entry_point(request):
    assert request.config.pluginmanager.get_plugin("dimsekit") is plugin_module


def test_fixtures_for_a_plugin_authors_suite(pytester):
    pytester.makepyfile(test_author=AUTHOR_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_without_an_override_dimsekit_cli_loads_the_installed_plugins(pytester):
    pytester.makepyfile(test_default='''
def test_default(dimsekit_cli, dimsekit_plugins):
    assert dimsekit_plugins is None
    assert dimsekit_cli.host.plugins["find"].status == "loaded"
''')
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_no_dimsekit_turns_the_fixtures_off(pytester):
    pytester.makepyfile(test_off="def test_off(dimsekit_scp):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:dimsekit")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'dimsekit_scp' not found*"])


@pytest.mark.parametrize("ci, outcome", [("", "skipped"), ("true", "failed")])
def test_require_module_skips_locally_and_fails_under_ci(pytester, monkeypatch, ci,
                                                          outcome):
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_missing='''
from dimsekit.testing.pytest_plugin import require_module

require_module("no_such_module_dimsekit", hint="pip install it")


def test_never_runs():
    pass
''')
    result = pytester.runpytest("-p", "no:cacheprovider", "-rsf")
    if outcome == "skipped":
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(
            ["*module 'no_such_module_dimsekit' is not installed; pip install it*"])
    else:
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*CI=true: fails instead of skipping*"])


def test_require_module_lets_a_broken_module_raise(tmp_path, monkeypatch):
    (tmp_path / "broken_dimsekit_mod.py").write_text("import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_xyz"):
        plugin_module.require_module("broken_dimsekit_mod")
