"""dimsekit's pytest plugin: testing helpers as fixtures, for plugin authors.

Installed with dimsekit (entry point ``pytest11: dimsekit``), so any test
suite in an environment where dimsekit is installed has these fixtures; turn
it off with ``-p no:dimsekit``.  Every fixture is function-scoped and named
``dimsekit_*``:

``dimsekit_make_scp(**knobs)``
    Start a :class:`dimsekit.testing.QuerySCP` (an in-process recording peer
    answering C-ECHO and C-FIND) on a free loopback port; every peer made is
    stopped after the test.
``dimsekit_scp``
    One such peer with the defaults: AE ``ANY-SCP``, the sample data.
``dimsekit_plugins``
    Which plugins ``dimsekit_cli`` loads.  Default ``None``: the installed
    entry points, as the ``dimsekit`` command does.  Override it in a test
    module or conftest to test your plugin alone::

        @pytest.fixture
        def dimsekit_plugins():
            import dimsekit_echo
            return {"echo": dimsekit_echo}

``dimsekit_cli(*args, **kwargs)``
    A :class:`dimsekit.testing.DimsekitRunner` for ``dimsekit_plugins``,
    running in the test's ``tmp_path``: the CLI in-process, with dimsekit's
    exit codes and one-line errors; returns a :class:`dimsekit.testing.Result`.
``dimsekit_subprocess(*args, **kwargs)``
    ``python -m dimsekit ARGS`` as a subprocess in ``tmp_path``
    (:func:`dimsekit.testing.run_dimsekit`); sees the installed plugins.

Helpers for tests that need something the machine may lack:
:func:`skip_or_fail` and :func:`require_module` skip the test, except when
the environment says ``CI=true``, where they fail it.

Loading this plugin imports neither pynetdicom nor pydicom: the fixtures
import what they use.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from dimsekit.testing.cli import DimsekitRunner, Result
    from dimsekit.testing.server import QuerySCP

__all__ = ["require_module", "skip_or_fail"]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the current test (or module, at import time) -- or fail it when
    the environment says ``CI=true``: there, something missing is a broken
    machine, not a reason to test less."""
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: fails instead of skipping)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str, hint: str = "") -> ModuleType:
    """Import module ``name``, or :func:`skip_or_fail` when it is not
    installed (an error inside the module itself propagates)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (name == exc.name or name.startswith(exc.name + ".")):
            raise
        skip_or_fail(f"module {name!r} is not installed{'; ' + hint if hint else ''}")


@pytest.fixture
def dimsekit_make_scp() -> Iterator[Callable[..., QuerySCP]]:
    """``dimsekit_make_scp(**knobs)`` starts an in-process recording QuerySCP
    on a free port; all of them are stopped after the test."""
    from dimsekit.testing.server import QuerySCP

    started: list[QuerySCP] = []

    def make(**knobs: Any) -> QuerySCP:
        scp = QuerySCP(**knobs)
        started.append(scp)
        return scp.start()

    yield make
    for scp in started:
        scp.stop()


@pytest.fixture
def dimsekit_scp(dimsekit_make_scp: Callable[..., QuerySCP]) -> QuerySCP:
    """An in-process recording peer (AE ANY-SCP, the sample data), started."""
    return dimsekit_make_scp()


@pytest.fixture
def dimsekit_plugins() -> Any:
    """The plugins ``dimsekit_cli`` loads: ``None`` (default) for the
    installed entry points, or ``{name: plugin}`` / a list of plugins for a
    fresh plugin manager holding only those.  Override to choose."""
    return None


@pytest.fixture
def dimsekit_cli(dimsekit_plugins: Any, tmp_path: Any) -> DimsekitRunner:
    """The ``dimsekit`` CLI built from ``dimsekit_plugins``, run in-process
    in ``tmp_path``: ``dimsekit_cli("echo", "127.0.0.1", port)``."""
    from dimsekit.testing.cli import DimsekitRunner

    if dimsekit_plugins is None:
        return DimsekitRunner(entry_points=True, cwd=tmp_path)
    return DimsekitRunner(plugins=dimsekit_plugins, cwd=tmp_path)


@pytest.fixture
def dimsekit_subprocess(tmp_path: Any) -> Callable[..., Result]:
    """``dimsekit_subprocess(*args, env=, timeout=, input=)`` runs
    ``python -m dimsekit`` as a subprocess in ``tmp_path``."""
    from dimsekit.testing.cli import run_dimsekit

    def run(*args: Any, **kwargs: Any) -> Result:
        kwargs.setdefault("cwd", tmp_path)
        return run_dimsekit(*args, **kwargs)

    return run
