"""What a test does when a service it needs is missing: skip, saying how to get it, or fail under CI.

A developer without PostgreSQL, HAProxy, Chromium or the model server's environment still runs the rest;
CI (`CI=true`, set by `.ci/run`) installs all of them, so there a missing one is a broken setup.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def skip_or_fail(message: str) -> NoReturn:
    """Skip the test with `message`, or fail it under CI."""
    if under_ci():
        pytest.fail(f"CI=true but {message}", pytrace=False)
    pytest.skip(message)
