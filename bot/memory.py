"""Giving the memory a burst of pictures used back to the system.

Decoding and recognising a picture allocates and frees hundreds of megabytes in the worker threads.
glibc's malloc keeps what was freed in its arenas (one per thread that allocated) instead of returning
it, so a server's RSS climbs after a burst of large or hostile uploads and stays there (issue 15: 0.9 GB
idle, 2.3 GB after a burst, never back). `malloc_trim(0)` returns the free pages of every arena.
bench/memory_burst.py measured it against MALLOC_ARENA_MAX and jemalloc; its figures are in the README.

glibc only: elsewhere (musl, macOS) there is no malloc_trim to call and `release_memory` does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import Callable

__all__ = ["RELEASE_MODES", "release_memory"]

#: When the worker pool gives memory back: after the last picture of a burst, after every picture, never.
RELEASE_MODES = ("idle", "each", "off")


def release_memory() -> bool:
    """Return the C allocator's free memory to the system; False where that cannot be done."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # glibc names itself here; musl and macOS do not
            return None
        function = ctypes.CDLL(None).malloc_trim  # the C library this process already runs on
    except (AttributeError, OSError, ValueError):
        return None
    function.argtypes, function.restype = [ctypes.c_size_t], ctypes.c_int
    return function
