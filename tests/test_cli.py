"""Mistakes a user can make end in one clear line and a non-zero exit, never a traceback."""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from plugin.settings import ConfigError, load_settings


def _okaeri(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    return subprocess.run([sys.executable, "-m", "plugin", *args], env={**full_env, **(env or {})}, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def _one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("okaeri: "), result.stderr
    return lines[0]


def test_invalid_setting_is_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match="OKAERI_SMTP_PORT"):
        load_settings(OKAERI_SMTP_PORT="seventy")


def test_bad_database_url_stops_the_program_with_one_line(tmp_path: Path) -> None:
    env = {"DATABASE_URL": "mysql://x", "OKAERI_SECRET_KEY": "k" * 40}
    line = _one_clear_line(_okaeri("shops", env=env, cwd=tmp_path))
    assert "DATABASE_URL" in line


def test_missing_secret_key_is_a_clear_error(tmp_path: Path) -> None:
    line = _one_clear_line(_okaeri("shops", env={"OKAERI_SECRET_KEY": ""}, cwd=tmp_path))
    assert "OKAERI_SECRET_KEY" in line


def test_sync_of_an_unknown_shop_is_a_clear_error(tmp_path: Path) -> None:
    env = {"OKAERI_SECRET_KEY": "k" * 40, "OKAERI_DATA_DIR": str(tmp_path)}
    assert _okaeri("migrate", env=env, cwd=tmp_path).returncode == 0
    line = _one_clear_line(_okaeri("sync", "PA99999999", env=env, cwd=tmp_path))
    assert "unknown shop" in line


def test_second_demo_on_a_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _okaeri("demo", "--port", str(port), env={"OKAERI_DATA_DIR": str(tmp_path)}, cwd=tmp_path)
        line = _one_clear_line(result)
    assert "already in use" in line


def test_help_lists_every_command() -> None:
    result = _okaeri("--help")
    for command in ("demo", "serve", "worker", "scheduler", "migrate", "sync", "shops"):
        assert command in result.stdout


def test_several_web_processes_with_the_in_process_queue_is_a_clear_error(tmp_path: Path) -> None:
    env = {"OKAERI_SECRET_KEY": "k" * 40, "OKAERI_DATA_DIR": str(tmp_path), "BROKER_URL": "memory://"}
    assert _okaeri("migrate", env=env, cwd=tmp_path).returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    line = _one_clear_line(_okaeri("serve", "--port", str(port), "--workers", "2", env=env, cwd=tmp_path))
    assert "shared broker" in line


def test_each_web_process_builds_its_app_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from plugin.web.serving import app_from_environment

    monkeypatch.setenv("OKAERI_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("OKAERI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("BROKER_URL", "memory://")
    import gc

    app = app_from_environment()
    try:
        assert gc.get_freeze_count() > 0  # what start-up built is out of the collector's full passes
    finally:
        gc.unfreeze()
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    app.state.runtime.close()


def test_verbose_reaches_the_web_processes_serve_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given `okaeri -v serve --workers 2` (uvicorn then imports the app factory in each new process)
    from click.testing import CliRunner

    import plugin.demo.stack
    from plugin.cli import cli

    monkeypatch.setenv("OKAERI_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("OKAERI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BROKER_URL", "redis://127.0.0.1:1/0")  # shared: never connected to here
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("OKAERI_LOG_LEVEL", "WARNING")  # restored after the test, whatever -v sets
    monkeypatch.setattr(plugin.demo.stack, "port_in_use", lambda host, port: False)
    seen: list[str] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: seen.append(load_settings().log_level))
    monkeypatch.setattr("plugin.install.lifecycle.refresh_all_scripts", lambda runtime: None)
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        result = CliRunner().invoke(cli, ["-v", "serve", "--workers", "2"])
    finally:  # the logging -v set up is this test's only
        for handler in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(handler)
        root.setLevel(level)
    # Then what each web process reads from the environment asks for INFO, as -v did here
    assert result.exit_code == 0, result.output
    assert seen == ["INFO"]
