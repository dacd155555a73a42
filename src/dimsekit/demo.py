"""Run a demo DICOM query peer, optionally around one command.

    python -m dimsekit.demo [--host 127.0.0.1] [--port 0] [--aet DEMO-SCP]
    python -m dimsekit.demo [...] -- COMMAND [ARG ...]

Starts an in-process :class:`dimsekit.testing.QuerySCP` serving the sample
data (C-ECHO; C-FIND Patient Root, Study Root, Patient/Study Only, Modality
Worklist, UPS Pull).

Without COMMAND it prints ``listening on HOST:PORT (AE DEMO-SCP)`` and serves
until interrupted (Ctrl-C or SIGTERM).  With COMMAND it replaces ``{port}``
(and ``{host}``, ``{aet}``) in every COMMAND word, runs it, stops the peer and
exits with the command's exit status::

    python -m dimsekit.demo -- dimsekit find -S -k QueryRetrieveLevel=STUDY \\
        -k PatientName= 127.0.0.1 {port}

This is a development helper, not a dimsekit command, so it uses argparse.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dimsekit.demo",
        usage="%(prog)s [--host HOST] [--port PORT] [--aet AET] [-- COMMAND [ARG ...]]",
        description="Run a demo DICOM query peer (sample data), optionally "
        "around one command whose words may contain {port}, {host} and {aet}.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--aet", default="DEMO-SCP", help="the peer's AE title")
    return parser


def _substitute(word: str, host: str, port: int, aet: str) -> str:
    return word.replace("{port}", str(port)).replace("{host}", host).replace("{aet}", aet)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args_in:
        cut = args_in.index("--")
        args_in, command = args_in[:cut], args_in[cut + 1:]
    args = _parser().parse_args(args_in)

    from dimsekit.testing import QuerySCP  # heavy: pynetdicom, pydicom

    try:
        scp = QuerySCP(ae_title=args.aet, host=args.host, port=args.port).start()
    except OSError as exc:
        print(f"demo: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 3
    try:
        if not command:
            signal.signal(signal.SIGTERM, _on_sigterm)
            print(f"listening on {args.host}:{scp.port} (AE {args.aet})", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                return 0
        words = [_substitute(w, args.host, scp.port, args.aet) for w in command]
        try:
            proc = subprocess.Popen(words)
        except OSError as exc:
            print(f"demo: cannot run {words[0]!r}: {exc}", file=sys.stderr)
            return 127
        try:
            code = proc.wait()
        except KeyboardInterrupt:  # the child got the SIGINT too
            code = proc.wait()
        return code if code >= 0 else 128 - code
    finally:
        scp.stop()


if __name__ == "__main__":
    sys.exit(main())
