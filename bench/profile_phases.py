"""Where one ``dimsekit find`` run spends its wall time, without a profiler.

cProfile (``profile_find.py``) slows the hot path several times over and
hides how long the peer takes; this wrapper times the run's phases with
``time.perf_counter`` instead, by wrapping a few functions in-process:

* a timeline, in ms since the interpreter started running this script:
  when the first request went out, when the first and the last response
  arrived, the end;
* per request (``--repeat N``: per query): the wall time spent sending,
  receiving (of it: waiting in ``select`` for the peer), decoding and
  writing the responses.

Usage (with the interpreter dimsekit is installed in; stdout goes to
/dev/null)::

    .venv/bin/python bench/profile_phases.py -- find --repeat 2000 -W -aec WL1 ... HOST PORT
    .venv/bin/python bench/profile_phases.py -- find -aec ORTHANC -S -k ... HOST PORT

The wrapped names are dimsekit's internals (``FastExchange``,
``_SocketReader``, ``Decoder``, ``Sinks``): with ``DIMSEKIT_PURE=1`` the
send/receive rows stay empty.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import collections  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

TOTALS: dict[str, float] = collections.defaultdict(float)
CALLS: collections.Counter[str] = collections.Counter()
MARKS: dict[str, float] = {}


def mark(name: str, again: bool = False) -> None:
    if again or name not in MARKS:
        MARKS[name] = time.perf_counter() - STARTED


def timed(owner: Any, attr: str, label: str, first: str | None = None,
          last: str | None = None) -> None:
    original = getattr(owner, attr)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if first:
            mark(first)
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TOTALS[label] += time.perf_counter() - t0
            CALLS[label] += 1
            if last:
                mark(last, again=True)

    setattr(owner, attr, wrapper)


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    from dimsekit._internals import exchange
    from dimsekit.plugins.find import sinks
    from dimsekit.qr import decode

    timed(exchange.FastExchange, "send", "send", first="first request sent")
    timed(exchange.FastExchange, "receive", "receive (all)")
    timed(exchange._SocketReader, "_readable", "  of it: select (peer)")
    timed(decode.Decoder, "__call__", "decode", first="first response",
          last="last response")
    timed(sinks.Sinks, "write", "write (format + output)")
    timed(sinks.Sinks, "flush", "flush")

    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stdout.flush()
    os.dup2(devnull, 1)
    from dimsekit.cli import main as dimsekit_main

    mark("dimsekit imported")
    code = 0
    try:
        dimsekit_main(args, prog_name="dimsekit")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    mark("end")
    out = sys.stderr
    print(f"exit {code}; timeline (ms): " + ", ".join(
        f"{name} {at * 1000:.0f}" for name, at in sorted(MARKS.items(), key=lambda kv: kv[1])),
        file=out)
    requests = CALLS["send"] or 1
    print(f"per request ({requests}):", file=out)
    for label in ("send", "receive (all)", "  of it: select (peer)", "decode",
                  "write (format + output)", "flush"):
        if CALLS[label]:
            print(f"  {label:26s} {TOTALS[label] * 1e6 / requests:10.1f} us "
                  f"({CALLS[label]} calls)", file=out)
    return code


if __name__ == "__main__":
    sys.exit(main())
