"""A token bucket per client address, in bounded memory (the least recently seen clients are forgotten)."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class RateLimit:
    """`burst` requests at once, then `per_minute` a minute; `max_clients` addresses remembered."""

    per_minute: float = 60.0
    burst: int = 20
    max_clients: int = 10_000

    def __post_init__(self) -> None:
        if self.per_minute <= 0 or self.burst < 1 or self.max_clients < 1:
            raise ValueError("per_minute must be positive, burst and max_clients at least 1")


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str | None:
    """Who a request is from: the peer, unless the peer is a trusted proxy; then the nearest address in
    X-Forwarded-For that is not a trusted proxy (each proxy appends the address it heard from, so what
    is left of the last untrusted one could be made up by the client)."""
    if not trusted or not forwarded_for or not _within(peer, trusted):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _within(address: str | None, networks) -> bool:  # noqa: ANN001
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks if network.version == ip.version)


def client_key(address: str | None) -> str:
    """The bucket a client address falls in: an IPv4 address, or an IPv6 /64 (one household or host)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class TokenBuckets:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, cost: float = 1.0) -> float:
        """0 when the request may go ahead (and is counted), else the seconds until it may."""
        now = self._clock()
        rate = self.limit.per_minute / 60.0
        tokens, at = self._buckets.pop(key, (float(self.limit.burst), now))
        tokens = min(float(self.limit.burst), tokens + (now - at) * rate)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (cost - tokens) / rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.limit.max_clients:
            self._buckets.popitem(last=False)
        return wait
