"""Logs an operator can feed to a collector: one JSON object per line with OKAERI_LOG_FORMAT=json,
readable text by default; both keep the event name and its facts."""
from __future__ import annotations

import json
import logging

import pytest
from click.testing import CliRunner

from plugin.cli import cli
from plugin.logs import EventJsonFormatter, TextFormatter
from plugin.settings import ConfigError, load_settings


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("okaeri.outbox", logging.INFO, __file__, 1, "okaeri.outbox.delivered", None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_json_line_carries_the_event_name_and_its_fields() -> None:
    line = EventJsonFormatter().format(_record(shop=3, messages=50, seconds=0.42))
    fields = json.loads(line)
    assert "\n" not in line
    assert fields["event"] == "okaeri.outbox.delivered" and fields["logger"] == "okaeri.outbox"
    assert fields["level"] == "INFO" and fields["time"].endswith("Z")
    assert (fields["shop"], fields["messages"], fields["seconds"]) == (3, 50, 0.42)


def test_a_json_line_keeps_japanese_readable_and_a_traceback_inside_the_object() -> None:
    try:
        raise ValueError("在庫なし")
    except ValueError:
        import sys

        record = logging.LogRecord("okaeri.web", logging.ERROR, __file__, 1, "okaeri.web.failed", None, sys.exc_info())
    fields = json.loads(EventJsonFormatter().format(record))
    assert "在庫なし" in fields["exc_info"]


def test_text_puts_the_fields_after_the_event_name() -> None:
    line = TextFormatter().format(_record(shop=3, messages=50))
    assert line.endswith("INFO okaeri.outbox okaeri.outbox.delivered shop=3 messages=50")


def test_the_format_is_a_setting_checked_at_start() -> None:
    assert load_settings(OKAERI_LOG_FORMAT="JSON", OKAERI_LOG_LEVEL="info").log_format == "json"
    with pytest.raises(ConfigError, match="OKAERI_LOG_FORMAT"):
        load_settings(OKAERI_LOG_FORMAT="xml")


@pytest.fixture
def root_logger():  # type: ignore[no-untyped-def]
    """The root logger as it was, restored after the CLI reconfigured it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_cli_logs_json_when_configured(monkeypatch, tmp_path, root_logger) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OKAERI_LOG_FORMAT", "json")
    monkeypatch.setenv("OKAERI_DATA_DIR", str(tmp_path))
    CliRunner().invoke(cli, ["-v", "shops"])
    assert isinstance(root_logger.handlers[-1].formatter, EventJsonFormatter)
    assert root_logger.level == logging.INFO
