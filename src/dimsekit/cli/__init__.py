"""The command-line host: ``dimsekit`` as a click group assembled from
plugins (:mod:`.host`), the options every command shares (:mod:`.options`),
logging for ``-q/-v/-d/-ll/-lc`` (:mod:`.logs`), argument files and
spellings (:mod:`.argv`), and the process-level work (:mod:`.app`: exit
codes, signals, stdout's reader going away).  It is a client of the
library (:mod:`dimsekit.client`, :mod:`dimsekit.qr`, ...), which never
prints, exits or changes process-wide state: this package does.

``main`` loads on first use, so that a library module importing, say,
:mod:`.logs` does not pull in the whole host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from dimsekit.cli.app import build_cli, discard_stdout, main

__all__ = ["build_cli", "discard_stdout", "main"]


def __getattr__(name: str) -> Any:
    from importlib import import_module

    return getattr(import_module("dimsekit.cli.app"), name)
