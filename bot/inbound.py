"""HTTP routes one adapter serves through another's server, in platform-neutral terms.

A fleet of replicas takes Telegram's webhook POSTs on the web page's aiohttp server (one port, one
health check, one load balancer). The web adapter owns the server and knows nothing of Telegram; the
Telegram adapter owns what a POST means and knows nothing of aiohttp. They meet here: the Telegram
adapter adds an `InboundRoute` to the process's `InboundRoutes` (the core carries the one instance,
as the object every adapter of a process is given), and the web adapter answers `POST /hooks/<name>`
with it, reading at most `max_body_bytes`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Mapping

#: a name is one path segment of /hooks/<name>
NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True)
class InboundRequest:
    headers: Mapping[str, str]  # case-insensitive, as the server hands them over
    body: bytes


@dataclass(frozen=True)
class InboundResponse:
    status: int
    text: str = ""


InboundHandler = Callable[[InboundRequest], Awaitable[InboundResponse]]


@dataclass(frozen=True)
class InboundRoute:
    name: str
    handler: InboundHandler
    max_body_bytes: int = 1024 * 1024


class InboundRoutes:
    """The routes of one process, by name; added when an adapter starts, removed when it stops."""

    def __init__(self) -> None:
        self._routes: dict[str, InboundRoute] = {}

    def add(self, route: InboundRoute) -> None:
        if not route.name or not set(route.name) <= NAME_CHARACTERS:
            raise ValueError(f"a route name is letters, digits, _ and -, not {route.name!r}")
        if route.name in self._routes:
            raise ValueError(f"the route {route.name!r} is taken")
        self._routes[route.name] = route

    def remove(self, name: str) -> None:
        self._routes.pop(name, None)

    def get(self, name: str) -> InboundRoute | None:
        return self._routes.get(name)
