"""Argument pre-processing shared by every command, before click parses.

- ``@FILE`` arguments are replaced by the words of FILE (DCMTK command
  files: whitespace separates words unless inside double or single quotes;
  a command file cannot name another one).
- DCMTK spellings that click cannot parse as option names are rewritten
  to their long form (``-x=`` -> ``--propose-uncompr``).
- ``--arguments`` prints the expanded command line on stderr (secrets
  masked) and the command goes on.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Sequence

from dimsekit.errors import UsageError

#: DCMTK spellings click cannot parse, and what they mean
SPELLINGS = {
    "-x=": "--propose-uncompr",
}

#: options whose value is a secret: never echoed
SECRET_OPTIONS = frozenset({"+pw", "--use-passwd"})


def read_command_file(path: str) -> list[str]:
    """The words of a DCMTK command file."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise UsageError(f"cannot read command file {path!r}: {exc.strerror}") from None
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.escape = ""  # backslashes are DICOM value separators, not escapes
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as exc:
        raise UsageError(f"cannot parse command file {path!r}: {exc}") from None


def expand(argv: Sequence[str]) -> list[str]:
    """Expand ``@file`` arguments and rewrite DCMTK spellings."""
    out: list[str] = []
    for arg in argv:
        if arg.startswith("@") and len(arg) > 1:
            words = read_command_file(arg[1:])
            nested = [w for w in words if w.startswith("@") and len(w) > 1]
            if nested:
                raise UsageError(
                    f"command file {arg[1:]!r} names another command file {nested[0]!r}"
                )
            out.extend(words)
        else:
            out.append(arg)
    return [SPELLINGS.get(arg, arg) for arg in out]


def masked(argv: Sequence[str]) -> list[str]:
    """``argv`` with the values of secret options replaced by ``****``
    (``+pw SECRET`` and ``--use-passwd=SECRET`` alike)."""
    out = list(argv)
    for i, arg in enumerate(out):
        name, eq, _ = arg.partition("=")
        if eq and name in SECRET_OPTIONS:
            out[i] = f"{name}=****"
        elif arg in SECRET_OPTIONS and i + 1 < len(out):
            out[i + 1] = "****"
    return out


def print_arguments(prog: str, argv: Sequence[str]) -> None:
    """DCMTK's ``--arguments`` report, on stderr (stdout carries results)."""
    shown = masked(argv)
    print(f"expanded command line to {len(shown)} arguments:", file=sys.stderr)
    print(" ".join([prog, *(shlex.quote(a) for a in shown)]), file=sys.stderr)
