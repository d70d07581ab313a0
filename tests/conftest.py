"""Shared fixtures: the network guard, the shared test data, a tiny trained model."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ANIFACE_SHARED_DATA", REPO.parent / "shared" / "data"))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --- network guard: nothing in the tests may reach beyond loopback -------------------------------

class OutboundConnectionBlocked(RuntimeError):
    pass


def _is_loopback(address) -> bool:
    if isinstance(address, (str, bytes)) and not isinstance(address, tuple):
        return True  # AF_UNIX socket path
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS: refuse


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise OutboundConnectionBlocked(f"test tried to connect to {address!r}; only loopback is allowed")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
        raise OutboundConnectionBlocked(f"test tried to connect to {address!r}; only loopback is allowed")
    return _real_connect_ex(self, address)


def pytest_configure(config) -> None:
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex


# --- shared data ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "faces").is_dir():
        pytest.skip(f"shared test data not found at {SHARED_DATA} (set ANIFACE_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, shared_data):
    """A small model trained on a few characters of shared/data/faces with a random 75 px backbone."""
    from tests.model_factory import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), shared_data / "faces")

from tests.storage_fixtures import *  # noqa: E402,F401,F403  (database_url, database: SQLite and PostgreSQL)
