"""Shell completion (``dimsekit completion bash|zsh|fish``, run in a real
bash) and ``--version`` naming every loaded plugin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_dimsekit

BIN = Path(sys.executable).parent


def _bash_complete(words: list[str], env: dict[str, str]) -> list[str]:
    """What bash offers for the last of ``words``, with dimsekit's
    completion script loaded as its docs say (``eval "$(dimsekit
    completion bash)"``)."""
    bash = shutil.which("bash")
    if bash is None:  # pragma: no cover - every CI machine has bash
        pytest.skip("no bash")
    script = (
        'eval "$(dimsekit completion bash)"\n'
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_dimsekit_completion dimsekit\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n')
    proc = subprocess.run([bash, "--norc", "-c", script], capture_output=True, text=True,
                          timeout=60, check=False,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}", **env})
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stdout.splitlines() if line]


@pytest.fixture
def config_env(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[peers.pacs-main]\nhost = "10.0.0.5"\n\n[peers.pacs-test]\n'
                    'host = "10.0.0.6"\nport = 11112\n\n[peers.wl]\nhost = "h"\n')
    return {"DIMSEKIT_CONFIG": str(path)}


def test_bash_completes_commands_formats_peers_and_keys(config_env):
    assert "find" in _bash_complete(["dimsekit", "f"], config_env)
    assert _bash_complete(["dimsekit", "find", "--format", "nd"], config_env) == ["ndjson"]
    assert _bash_complete(["dimsekit", "find", "pacs"], config_env) == [
        "pacs-main", "pacs-test"]
    assert _bash_complete(["dimsekit", "echo", "w"], config_env) == ["wl"]
    assert _bash_complete(["dimsekit", "find", "-k", "PatientBirthD"], config_env) == [
        "PatientBirthDate", "PatientBirthDateInAlternativeCalendar"]
    assert "SERIES:Modality" in _bash_complete(
        ["dimsekit", "find", "-k", "SERIES:Modal"], config_env)
    assert _bash_complete(["dimsekit", "find", "-k", "PatientName=DO"], config_env) == []


@pytest.mark.parametrize("shell, marker", [
    ("bash", "_DIMSEKIT_COMPLETE=bash_complete"), ("zsh", "#compdef dimsekit"),
    ("fish", "complete --no-files --command dimsekit")])
def test_each_shells_script(shell, marker):
    result = run_dimsekit("completion", shell)
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout


def test_an_unknown_shell_is_a_usage_error():
    result = run_dimsekit("completion", "tcsh")
    assert result.returncode == 2
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.stderr


def test_version_names_the_libraries_and_every_plugin():
    from importlib.metadata import PackageNotFoundError, version

    result = run_dimsekit("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == ["dimsekit 0.1.0", f"pydicom {version('pydicom')}",
                         f"pynetdicom {version('pynetdicom')}"]
    assert lines[3].startswith("Python ") and lines[4].startswith("OpenSSL ")
    assert "plugin find 0.1.0 (dimsekit)" in lines
    for name, dist in (("echo", "dimsekit-echo"), ("move", "dimsekit-move")):
        try:
            expected = f"plugin {name} {version(dist)} ({dist})"
        except PackageNotFoundError:  # the example is not installed here
            assert os.environ.get("CI") != "true", f"{dist} is not installed"
            continue
        assert expected in lines
