"""The layout and the types stay honest: import contracts and mypy, as part of the one test command.

Both read their configuration from pyproject.toml ([tool.importlinter], [tool.mypy]).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


def test_imports_keep_every_contract() -> None:
    # Given the contracts in pyproject.toml (layers, forbidden imports, no cycles)
    check = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    # When import-linter reads the four packages' imports
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120)
    # Then every contract is kept
    status = result.returncode
    assert status == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.slow
def test_mypy_finds_no_errors() -> None:
    # Given the [tool.mypy] configuration (plugin, connectors, scenarios, recommender; no migrations)
    # When a bare `mypy` runs from the repository root (its own process: mypy is not re-entrant)
    result = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    # Then it reports no error
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    status = result.returncode
    assert status == 0, "\n".join([*errors[:300], result.stdout[-300:], result.stderr[-2000:]])
