"""``dimsekit move`` / ``get``: what is wrong with a command line is exit 2
before any network traffic; no association is exit 3; one line on stderr,
never a traceback."""

from __future__ import annotations

import socket

import pytest

from dimsekit.testing.pytest_plugin import require_module

require_module("dimsekit_move", hint="pip install -e ./examples/dimsekit-move")

STUDY = ["-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=1.2.3"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_error(result) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("service", ["move", "get"])
def test_a_query_without_a_level_is_a_usage_error(dimsekit_subprocess, service):
    result = dimsekit_subprocess(service, "-S", "-k", "StudyInstanceUID=1.2.3", "127.0.0.1",
                                 _closed_port())
    assert result.returncode == 2
    assert _one_error(result) == (f"E: query -k: a C-{service.upper()} needs "
                                  f"QueryRetrieveLevel (-k QueryRetrieveLevel=STUDY or -L)")


def test_no_query_at_all_is_a_usage_error(dimsekit_subprocess):
    result = dimsekit_subprocess("get", "127.0.0.1", _closed_port())
    assert result.returncode == 2
    assert _one_error(result) == "E: no query: give -k keys and/or query files"


def test_an_output_directory_that_is_a_file_is_a_usage_error(dimsekit_subprocess, tmp_path):
    (tmp_path / "taken").write_text("x")
    result = dimsekit_subprocess("get", "-od", tmp_path / "taken", *STUDY, "127.0.0.1",
                                 _closed_port())
    assert result.returncode == 2
    assert _one_error(result).startswith(f"E: cannot write to {tmp_path / 'taken'}: ")


def test_a_listen_port_in_use_is_a_usage_error(dimsekit_subprocess):
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = dimsekit_subprocess("move", "+P", port, *STUDY, "127.0.0.1", _closed_port())
    assert result.returncode == 2
    assert _one_error(result).startswith(
        f"E: cannot listen on port {port} for incoming associations: ")


@pytest.mark.parametrize("service", ["move", "get"])
def test_no_association_is_exit_3(dimsekit_subprocess, service, tmp_path):
    port = _closed_port()
    result = dimsekit_subprocess(service, "-od", tmp_path, *STUDY, "127.0.0.1", port)
    assert result.returncode == 3
    assert _one_error(result) == (f"E: cannot connect to 127.0.0.1:{port}: "
                                  f"[Errno 111] Connection refused")
    assert list(tmp_path.iterdir()) == []


def test_move_help_lists_movescus_options(dimsekit_subprocess):
    result = dimsekit_subprocess("move", "--help")
    assert result.returncode == 0
    for spelling in ("-aem, --move AETITLE", "+P, --port N", "--no-port",
                     "-P, --patient", "use patient root information model (default)",
                     "-S, --study", "-O, --psonly", "-od, --output-directory DIR",
                     "[default: MOVESCU]"):
        assert spelling in result.stdout, spelling
    assert "[default: GETSCU]" in dimsekit_subprocess("get", "--help").stdout


@pytest.mark.parametrize("service", ["move", "get"])
def test_dry_run_sends_nothing_and_says_what_it_would(dimsekit_subprocess, service, tmp_path):
    import json

    port = _closed_port()  # nothing listens: a real run would be exit 3
    extra = ["-aem", "ARCHIVE2"] if service == "move" else []
    result = dimsekit_subprocess(service, "--dry-run", "-S", *extra, "-od", tmp_path / "in",
                                 *STUDY, "127.0.0.1", port)
    assert result.returncode == 0, result.stderr
    (sent,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert sent["0020000D"]["Value"] == ["1.2.3"]
    lines = result.stderr.splitlines()
    assert lines[0] == (f"dry-run: nothing is sent; the association would be requested from "
                        f"127.0.0.1:{port} ({service.upper()}SCU -> ANY-SCP)")
    assert lines[1] == f"dry-run: C-{service.upper()}: study root information model"
    if service == "get":
        assert "with the SCP role" in lines[2]
    else:
        assert lines[3] == "dry-run: would move to ARCHIVE2 (to another AE)"
    assert not (tmp_path / "in").exists()
    bad = dimsekit_subprocess(service, "--dry-run", "-k", "StudyInstanceUID=1.2.3",
                              "127.0.0.1", port)
    assert bad.returncode == 2
