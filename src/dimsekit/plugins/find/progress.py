"""The live status line on an interactive stderr: matches so far, their
rate, the time since the start (and the batch rows done), redrawn in place
a few times a second and cleared when the run ends.  Never when stderr is
not a terminal, ``TERM=dumb``, or with ``-q``; nothing until the run has
lasted half a second (a quick query shows none)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any

from dimsekit.api import get_logger

#: seconds between redraws, and before the first
INTERVAL = 0.25
FIRST_AFTER = 0.5
_CLEAR = "\r\x1b[K"


def wanted(stream: Any = None) -> bool:
    """Whether a status line belongs on ``stream`` (default: stderr)."""
    stream = sys.stderr if stream is None else stream
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return (tty and os.environ.get("TERM") != "dumb"
            and get_logger("find").isEnabledFor(30))  # not -q


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class Progress:
    """Counts what ``sinks`` writes and redraws the line from a daemon
    thread (so the clock moves while the peer searches); :meth:`stop`
    clears it."""

    def __init__(self, sinks: Any, stream: Any = None):
        self.stream = sys.stderr if stream is None else stream
        self.sinks = sinks
        self.rows = 0
        self.started = time.monotonic()
        self.shown = False
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        row_end = sinks.row_end

        def counted_row_end(end: Any) -> None:
            row_end(end)
            self.rows += 1

        sinks.row_end = counted_row_end
        self._thread = threading.Thread(target=self._run, name="dimsekit-progress",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._stopped.wait(FIRST_AFTER):
            return
        while True:
            self.draw()
            if self._stopped.wait(INTERVAL):
                return

    def text(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        count = self.sinks.count
        parts = [f"{count:,} match{'es' * (count != 1)}", f"{count / elapsed:,.0f}/s",
                 _clock(elapsed)]
        if self.rows:
            parts.append(f"{self.rows:,} row{'s' * (self.rows != 1)} done")
        return ", ".join(parts)

    def draw(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            try:
                self.stream.write(_CLEAR + self.text())
                self.stream.flush()
                self.shown = True
            except (OSError, ValueError):
                self._stopped.set()

    def stop(self) -> None:
        """No more redraws; the line cleared."""
        with self._lock:
            self._stopped.set()
            if self.shown:
                try:
                    self.stream.write(_CLEAR)
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
        self._thread.join(1.0)


def start(sinks: Any) -> Progress | None:
    """A :class:`Progress` for ``sinks`` when stderr wants one."""
    return Progress(sinks) if wanted() else None
