"""Log output: one JSON object per line for log collectors (OKAERI_LOG_FORMAT=json), or readable
text (the default, and the demo's).

The code logs an event name as the message and its facts as `extra` fields
(`log.info("okaeri.outbox.delivered", extra={"shop": 3, "messages": 50})`); both formats keep
those fields: JSON as keys beside `event`, text as `key=value` after the event name.
"""
from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

__all__ = ["configure_logging", "TextFormatter", "EventJsonFormatter", "LOG_FORMATS"]

LOG_FORMATS = ("text", "json")

# The attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in vars(record).items() if key not in _STANDARD and not key.startswith("_")}


class TextFormatter(logging.Formatter):
    """`2026-12-02 07:30:01 INFO okaeri.worker okaeri.worker.requeued messages=3`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if not extras:
            return line
        head, _, tail = line.partition("\n")  # a traceback stays below the fields
        fields = " ".join(f"{key}={value}" for key, value in extras.items())
        return f"{head} {fields}" + (f"\n{tail}" if tail else "")


class EventJsonFormatter(JsonFormatter):
    """`{"time": "…Z", "level": "INFO", "logger": "okaeri.worker", "event": "okaeri.worker.requeued", "messages": 3}`."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "message": "event"},
            datefmt="%Y-%m-%dT%H:%M:%S", json_ensure_ascii=False)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802 - logging's name
        import time

        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time of the record (a test runner swaps it)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(level: int, log_format: str = "text") -> None:
    """Send every log record to stderr in `log_format` ("text" or "json") from `level` up; a second
    call replaces the first one's handler and leaves other handlers (a test runner's) alone."""
    handler = _StderrHandler()
    handler.setFormatter(EventJsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
