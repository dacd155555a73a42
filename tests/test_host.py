"""The host: CLI assembly from a plugin manager, plugin loading and isolation."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pluggy
import pytest
from click.testing import CliRunner
from conftest import run_dimsekit

from dimsekit.api import InformationModel, Writer, hookimpl
from dimsekit.cli import build_cli
from dimsekit.cli.host import Host, PluginError


class HelloPlugin:
    @hookimpl
    def dimsekit_commands(self, host):
        @click.command("hello")
        @click.argument("who")
        def hello(who):
            """Say hello."""
            click.echo(f"hello {who}")

        return [hello]


def fresh_host(*plugins):
    host = Host(pluggy.PluginManager("dimsekit"))
    for i, plugin in enumerate(plugins):
        host.register(plugin, f"p{i}")
    return host


def test_a_plugin_on_a_fresh_manager_adds_its_command():
    cli = build_cli(fresh_host(HelloPlugin()))
    result = CliRunner().invoke(cli, ["hello", "world"])
    assert result.exit_code == 0
    assert result.output == "hello world\n"
    assert "find" not in CliRunner().invoke(cli, ["--help"]).output


def test_two_plugins_with_one_command_name_is_an_error_naming_both():
    host = Host(pluggy.PluginManager("dimsekit"))
    host.register(HelloPlugin(), "first")
    host.register(HelloPlugin(), "second")
    with pytest.raises(PluginError, match="'first' and plugin 'second'"):
        host.commands()


def test_a_second_plugin_under_a_taken_name_leaves_the_first_working(capsys):
    host = Host(pluggy.PluginManager("dimsekit"))
    assert host.register(HelloPlugin(), "hello") is True
    assert host.register(HelloPlugin(), "hello") is False
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'hello' is already loaded" in err
    assert host.plugins["hello"].status == "loaded"
    result = CliRunner().invoke(build_cli(host), ["hello", "world"])
    assert result.output == "hello world\n"


def test_a_plugin_may_not_shadow_a_host_command():
    class Shadow:
        @hookimpl
        def dimsekit_commands(self, host):
            return [click.Command("plugins")]

    with pytest.raises(PluginError, match="dimsekit's own"):
        fresh_host(Shadow()).commands()


def test_misspelt_hook_is_reported_and_skipped(capsys):
    class Typo:
        @hookimpl
        def dimsekit_comands(self, host):  # sic
            return []

    host = Host(pluggy.PluginManager("dimsekit"))
    assert host.register(Typo(), "typo") is False
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "typo" in err and "dimsekit_comands" in err
    assert host.plugins["typo"].status.startswith("failed")


def test_a_raising_hook_costs_one_warning_and_the_others_still_work(capsys):
    class Broken:
        @hookimpl
        def dimsekit_information_models(self):
            raise RuntimeError("boom")

    class Good:
        @hookimpl
        def dimsekit_information_models(self):
            return [InformationModel("m", "1.2.3", "svc", ("-M",), "help")]

    host = fresh_host(Broken(), Good())
    assert [m.name for m in host.information_models("svc")] == ["m"]
    err = capsys.readouterr().err
    assert "boom" in err and err.startswith("W: plugin 'p0'")


def test_duplicate_contribution_names_both_plugins():
    class M:
        @hookimpl
        def dimsekit_information_models(self):
            return [InformationModel("m", "1.2.3", "svc", ("-M",), "help")]

    with pytest.raises(PluginError, match="'p0' and plugin 'p1'"):
        fresh_host(M(), M()).information_models("svc")


def test_every_hookspec_is_prefixed_and_documented():
    from dimsekit import hookspecs

    specs = [n for n in dir(hookspecs) if n.startswith("dimsekit_")]
    assert len(specs) >= 4
    for name in specs:
        doc = getattr(hookspecs, name).__doc__ or ""
        assert "Called" in doc and "Return" in doc, name


# -- entry points, as installed distributions ---------------------------------


def _fake_distribution(root, name, module_source, entry_name=None):
    """A distribution on sys.path declaring a ``dimsekit`` entry point."""
    entry_name = entry_name or name
    info = root / f"{name}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[dimsekit]\n{entry_name} = {name}_mod\n")
    (root / f"{name}_mod.py").write_text(textwrap.dedent(module_source))
    return root


BROKEN = """
raise ImportError("this plugin is broken on purpose")
"""

HELLO = """
import click
from dimsekit.api import hookimpl

@hookimpl
def dimsekit_commands(host):
    @click.command("hello")
    def hello():
        click.echo("hello from a plugin")
    return [hello]
"""


def test_a_plugin_that_fails_to_import_costs_one_warning_line(tmp_path):
    _fake_distribution(tmp_path, "brokenplug", BROKEN)
    _fake_distribution(tmp_path, "helloplug", HELLO)
    env = {"PYTHONPATH": str(tmp_path)}
    result = run_dimsekit("--help", env=env)
    assert result.returncode == 0
    assert result.stderr_lines == [
        ("W: plugin 'brokenplug' (distribution brokenplug 1.2.3) skipped: "
         "ImportError: this plugin is broken on purpose")
    ]
    assert "find" in result.stdout and "hello" in result.stdout
    assert run_dimsekit("hello", env=env).stdout == "hello from a plugin\n"

    listed = json.loads(run_dimsekit("plugins", "--json", env=env).stdout)
    by_name = {p["name"]: p for p in listed}
    assert by_name["brokenplug"]["status"].startswith("failed: ImportError")
    assert by_name["helloplug"]["hooks"] == ["dimsekit_commands"]
    assert by_name["helloplug"]["version"] == "1.2.3"
    assert by_name["find"]["distribution"] == "dimsekit"
    assert by_name["find"]["status"] == "loaded"


def test_a_second_distribution_under_a_taken_entry_point_name_is_named(tmp_path):
    """Two distributions declaring one entry-point name: the first (by
    name order on sys.path) is loaded and works, the other costs one
    warning line naming both."""
    _fake_distribution(tmp_path, "helloplug", HELLO, entry_name="hello")
    _fake_distribution(tmp_path, "otherhello", HELLO.replace("hello from", "other from"),
                       entry_name="hello")
    env = {"PYTHONPATH": str(tmp_path)}
    result = run_dimsekit("hello", env=env)
    assert result.returncode == 0
    (warning,) = result.stderr_lines
    assert warning.startswith("W: plugin 'hello' of distribution ")
    assert "skipped: the name is taken by distribution " in warning
    assert {"helloplug", "otherhello"} <= set(warning.replace("1.2.3", "").split())


def test_load_plugins_env_selects_third_party_plugins(tmp_path):
    _fake_distribution(tmp_path, "brokenplug", BROKEN)
    _fake_distribution(tmp_path, "helloplug", HELLO)
    base = {"PYTHONPATH": str(tmp_path)}
    only_builtins = run_dimsekit("--help", env={**base, "DIMSEKIT_LOAD_PLUGINS": ""})
    assert only_builtins.returncode == 0 and only_builtins.stderr == ""
    assert "find" in only_builtins.stdout and "hello" not in only_builtins.stdout
    hello_only = run_dimsekit("--help", env={**base, "DIMSEKIT_LOAD_PLUGINS": "helloplug"})
    assert hello_only.stderr == "" and "hello" in hello_only.stdout


def test_a_third_party_find_collides_with_the_builtin(tmp_path):
    _fake_distribution(tmp_path, "otherfind", HELLO.replace('"hello"', '"find"'))
    result = run_dimsekit("find", "--help", env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr_lines == [
        ("E: command 'find' is provided by both plugin 'find' and plugin 'otherfind'; "
         "uninstall one, or choose with DIMSEKIT_LOAD_PLUGINS=name,...")
    ]


def test_plugins_table():
    result = run_dimsekit("plugins")
    assert result.returncode == 0
    assert result.stdout.startswith("find 0.1.0 [loaded]\n")
    assert "dimsekit_commands" in result.stdout


@pytest.mark.parametrize("args", [["--help"], ["find", "--help"], ["plugins"]])
def test_help_imports_neither_pydicom_nor_pynetdicom(args):
    code = (
        "import sys\n"
        "from dimsekit.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('pydicom', 'pynetdicom') if m in sys.modules]\n"
        "sys.stderr.write(repr(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False,
                          text=True)
    assert proc.stderr.endswith("[]"), proc.stderr


def test_version_and_python_m():
    result = run_dimsekit("--version")
    assert result.returncode == 0 and result.stdout.splitlines()[0] == "dimsekit 0.1.0"
    script = str(Path(sys.executable).parent / "dimsekit")
    exe = subprocess.run([script, "find", "--version"], capture_output=True, check=False,
                         text=True)
    assert exe.returncode == 0 and exe.stdout.splitlines()[0] == "dimsekit 0.1.0"


def test_a_broken_pipe_that_is_not_stdout_is_not_taken_for_head(tmp_path):
    """A plugin's own socket failing with EPIPE is a failure (one line, exit
    70), not a reader of stdout that went away (quiet exit 0)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import socket, sys
        import click, pluggy
        from dimsekit.api import hookimpl
        from dimsekit.cli import main
        from dimsekit.cli.host import Host

        @click.command("send")
        def send():
            here, there = socket.socketpair()
            there.close()
            for _ in range(100):
                here.sendall(b"x" * 65536)

        class Plugin:
            @hookimpl
            def dimsekit_commands(self, host):
                return [send]

        host = Host(pluggy.PluginManager("dimsekit"))
        host.register(Plugin(), "sender")
        main(["send"], host=host)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=False,
                          text=True, timeout=60)
    assert done.returncode == 70, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("E: internal error: BrokenPipeError")


# -- hooks are called through pluggy: wrappers work --------------------------


def _writer(name):
    return Writer(name, "svc", lambda stream, options: None, f"{name} help")


class Writers:
    def __init__(self, *names):
        self.names = names

    @hookimpl
    def dimsekit_writers(self):
        return [_writer(n) for n in self.names]


def test_a_wrapper_on_writers_works_and_can_change_the_result(capsys):
    seen = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def dimsekit_writers(self):
            results = yield
            seen.append([w.name for ws in results for w in ws])
            kept = [[w for w in ws if w.name != "drop"] for ws in results]
            return [*kept, [_writer("added")]]

    host = fresh_host(Writers("a", "drop"), Writers("b"), Wrapper())
    names = [w.name for w in host.writers("svc")]
    assert sorted(names) == ["a", "added", "b"]
    assert names.index("a") < names.index("b")  # registration order
    assert seen == [["b", "a", "drop"]]  # pluggy's own order inside the wrapper
    assert capsys.readouterr().err == ""
    assert {info.status for info in host.plugins.values()} == {"loaded"}


def test_an_old_style_hookwrapper_on_writers_works_and_can_change_the_result(capsys):
    class OldWrapper:
        @hookimpl(hookwrapper=True)
        def dimsekit_writers(self):
            outcome = yield
            outcome.force_result([*outcome.get_result(), [_writer("added")]])

    host = fresh_host(Writers("a"), OldWrapper())
    assert sorted(w.name for w in host.writers("svc")) == ["a", "added"]
    assert capsys.readouterr().err == ""
    assert host.plugins["p1"].status == "loaded"


def test_a_wrapper_around_a_failing_plugin_still_wraps_the_others(capsys):
    class Broken:
        @hookimpl
        def dimsekit_writers(self):
            raise RuntimeError("boom")

    class Wrapper:
        @hookimpl(wrapper=True)
        def dimsekit_writers(self):
            results = yield
            return [*results, [_writer("added")]]

    host = fresh_host(Writers("a"), Broken(), Wrapper())
    assert sorted(w.name for w in host.writers("svc")) == ["a", "added"]
    err = capsys.readouterr().err
    assert err == "W: plugin 'p1' skipped: RuntimeError: boom\n"
    assert host.plugins["p1"].status == "failed: RuntimeError: boom"
    assert host.plugins["p0"].status == host.plugins["p2"].status == "loaded"


@pytest.mark.parametrize("culprit", ["raises", "wrapper raises", "not iterable",
                                     "fails while iterated", "wrapper did not yield"])
def test_a_failing_plugin_is_named_and_the_others_stand(culprit, capsys):
    class Raises:
        @hookimpl
        def dimsekit_writers(self):
            raise RuntimeError("boom")

    class WrapperRaises:
        @hookimpl(wrapper=True)
        def dimsekit_writers(self):
            yield
            raise RuntimeError("boom")

    class NotIterable:
        @hookimpl
        def dimsekit_writers(self):
            return 42

    class FailsWhileIterated:
        @hookimpl
        def dimsekit_writers(self):
            yield _writer("half")
            raise RuntimeError("boom")

    class NoYield:
        @hookimpl(wrapper=True)
        def dimsekit_writers(self):
            return []
            yield  # a generator that never yields

    bad = {"raises": Raises, "wrapper raises": WrapperRaises,
           "not iterable": NotIterable, "fails while iterated": FailsWhileIterated,
           "wrapper did not yield": NoYield}[culprit]()
    host = fresh_host(Writers("a"), bad, Writers("b"))
    assert [w.name for w in host.writers("svc")] == ["a", "b"]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("W: plugin 'p1' skipped: ")
    assert host.plugins["p1"].status.startswith("failed: ")
    # left out of that hook from then on: asking again costs no second warning
    host.__dict__.pop("_writers")
    assert [w.name for w in host.writers("svc")] == ["a", "b"]
    assert capsys.readouterr().err == ""


def test_a_duplicate_a_wrapper_adds_is_reported():
    class Duplicates:
        @hookimpl(wrapper=True)
        def dimsekit_writers(self):
            results = yield
            return [*results, [_writer("a")]]

    with pytest.raises(PluginError, match="'a' is provided by both plugin 'p0' and "
                                          "plugin 'p1'"):
        fresh_host(Writers("a"), Duplicates()).writers("svc")
    with pytest.raises(PluginError, match="'a' is provided by both plugin 'p0' and "
                                          "plugin 'p1'"):
        fresh_host(Writers("a"), Writers("b", "a")).writers("svc")


def test_the_cyclic_gc_is_off_during_start_up_and_on_for_the_run(scp):
    """The dimsekit process starts with the GC off (imports allocate much,
    free little); find turns it on once its imports are done, any other
    command gets it on from the start."""
    script = textwrap.dedent("""
        import gc, sys
        import dimsekit.plugins.find.run as find_run
        import dimsekit_echo.run as echo_run
        seen = []
        def spy(module, name, label):
            original = getattr(module, name)
            def wrapper(*args, **kwargs):
                seen.append(f"{label}:{gc.isenabled()}")
                return original(*args, **kwargs)
            setattr(module, name, wrapper)
        spy(find_run, "run_find", "find-run")
        spy(find_run.FindRequest, "from_cli", "find-prepare")
        spy(echo_run, "run_echo", "echo-run")
        from dimsekit.cli import main
        sys.argv = ["dimsekit", *sys.argv[1:]]
        try:
            main()
        finally:
            print(" ".join(seen), file=sys.stderr)
        """)
    pytest.importorskip("dimsekit_echo")
    find = subprocess.run([sys.executable, "-c", script, "find", "-L", "PATIENT", "-k",
                           "PatientID=", "127.0.0.1", str(scp.port)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert find.returncode == 0, find.stderr
    assert find.stderr.split()[-2:] == ["find-prepare:False", "find-run:True"]
    echo = subprocess.run([sys.executable, "-c", script, "echo", "127.0.0.1", str(scp.port)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert echo.returncode == 0, echo.stderr
    assert echo.stderr.split()[-1] == "echo-run:True"
