"""Run one ``dimsekit`` command in-process under cProfile, every thread.

``python -m cProfile -m dimsekit ...`` sees only the main thread, but a
pynetdicom association runs two more: the DUL reactor (reads the socket,
decodes PDUs, reassembles DIMSE messages) and the association reactor.
This wrapper profiles each thread separately and writes::

    OUT-main.prof, OUT-<thread>.prof ...   one pstats file per thread
    OUT.txt                                per thread: wall time, then the top
                                           entries by cumulative and by tottime

cProfile measures wall-clock time, so sleeps (pynetdicom's polling loops)
and blocking queue waits show up as time spent in ``time.sleep`` and
``lock.acquire``.  Stdout of the command goes to /dev/null.

Usage (with the interpreter dimsekit is installed in)::

    .venv/bin/python bench/profile_find.py --out prof/case1 [--top 30] -- \\
        find -S -k QueryRetrieveLevel=STUDY -k PatientName= ... 127.0.0.1 4242
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import threading
import time


def main() -> int:
    parser = argparse.ArgumentParser(prog="profile_find.py",
                                     usage="%(prog)s --out PREFIX [--top N] -- DIMSEKIT-ARGS...")
    parser.add_argument("--out", required=True, help="output prefix (PREFIX-main.prof, ...)")
    parser.add_argument("--top", type=int, default=30, help="entries per listing")
    parser.add_argument("--keep-stdout", action="store_true",
                        help="leave the command's stdout alone (default: /dev/null)")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    opts = parser.parse_args()
    args = opts.args[1:] if opts.args[:1] == ["--"] else opts.args

    profiles: list[tuple[str, cProfile.Profile, float]] = []
    lock = threading.Lock()
    original_run = threading.Thread.run

    def profiled_run(self: threading.Thread) -> None:
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        try:
            original_run(self)
        finally:
            prof.disable()
            with lock:
                profiles.append((f"{type(self).__name__}-{self.name}", prof,
                                 time.perf_counter() - t0))

    threading.Thread.run = profiled_run  # type: ignore[method-assign]

    if not opts.keep_stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        sys.stdout.flush()
        os.dup2(devnull, 1)

    from dimsekit.cli import main as dimsekit_main

    main_prof = cProfile.Profile()
    t0 = time.perf_counter()
    code = 0
    main_prof.enable()
    try:
        dimsekit_main(args, prog_name="dimsekit")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        main_prof.disable()
    wall = time.perf_counter() - t0
    for t in threading.enumerate():  # let reactor threads finish and record
        if t is not threading.current_thread():
            t.join(timeout=5)

    os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
    report = io.StringIO()
    report.write(f"dimsekit {' '.join(args)}\nexit {code}, main thread wall {wall:.3f} s\n")
    entries = [("main", main_prof, wall)] + sorted(profiles, key=lambda p: -p[2])
    for name, prof, seconds in entries:
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
        path = f"{opts.out}-{safe}.prof"
        prof.dump_stats(path)
        report.write(f"\n{'=' * 100}\nthread {name}: {seconds:.3f} s wall ({path})\n")
        for key in ("cumulative", "tottime"):
            report.write(f"\n--- by {key} ---\n")
            stats = pstats.Stats(prof, stream=report)
            stats.sort_stats(key).print_stats(opts.top)
    with open(f"{opts.out}.txt", "w", encoding="utf-8") as fh:
        fh.write(report.getvalue())
    print(f"profile: {opts.out}.txt ({len(entries)} threads)", file=sys.stderr)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
