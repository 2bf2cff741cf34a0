"""The ``lepidopt`` logger's one handler, set up the same way by the CLI and by the processes it starts."""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["configure_logging"]


class _AboveProgressBars(logging.Handler):
    """On a terminal, log lines are printed above the progress bars instead of through them."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def configure_logging(level: int) -> None:
    log = logging.getLogger("lepidopt")
    tty = sys.stderr.isatty()
    handler = _AboveProgressBars() if tty else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s" if tty else "%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
