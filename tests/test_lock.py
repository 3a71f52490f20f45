"""The lock file pins every dependency pyproject.toml names, with hashes: CI and the production
install use it, so it must never drift from pyproject.toml.

Regenerate after changing dependencies:
    pip-compile --generate-hashes --extra test --strip-extras --allow-unsafe --no-emit-index-url \
        --no-emit-find-links --output-file requirements.lock pyproject.toml
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)")


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in [*project["dependencies"], *project["optional-dependencies"]["test"]]]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    missing = [str(r) for r in _declared() if canonicalize_name(r.name) not in pins]
    outside = [f"{r} (locked {pins[canonicalize_name(r.name)]})" for r in _declared()
               if canonicalize_name(r.name) in pins and not r.specifier.contains(pins[canonicalize_name(r.name)],
                                                                                prereleases=True)]
    assert not missing, f"not in requirements.lock (re-run pip-compile, see this module's docstring): {missing}"
    assert not outside, f"locked outside pyproject.toml's range: {outside}"


def test_every_pin_carries_a_hash() -> None:
    text = (ROOT / "requirements.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    unhashed = [block.split()[0] for block in blocks if PIN.match(block) and "--hash=sha256:" not in block]
    assert not unhashed, f"pins without a hash: {unhashed}"


def test_the_lock_names_no_local_index_or_wheel_directory() -> None:
    text = (ROOT / "requirements.lock").read_text()
    assert not re.search(r"^--(find-links|index-url|extra-index-url)", text, re.M)
    assert "okaeri" not in _pins()  # the application itself is installed from the checkout
