"""The cache holds only what can be done without for a while: login-failure and API rate
counts (sessions are in PostgreSQL alone). When Redis is down or restarting, the site goes on
without it instead of answering every page, login and API call with a 500: each process
counts in its own memory meanwhile, so the limits still hold per process, and goes back to
Redis once it answers again."""

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# Once a minute per process is enough to say so: every request would otherwise log it.
WARN_EVERY_S = 60.0
_last_warning = -math.inf  # time.monotonic() may be under a minute on a host just booted

# After a failure Redis is left alone this long. A host that is down but silent (a dead
# machine, a dropped route) costs a connect timeout per try, and a request makes several
# cache calls: trying on every call would add seconds to every page.
RETRY_AFTER_S = 10.0
# By server location: Django makes one cache object per thread, and an outage is the
# server's, not the thread's.
_down_until: dict[str, float] = {}


def _fall_back(method: Callable[..., Any]) -> Callable[..., Any]:
    """The method of Redis's cache, answered by the process's own memory while Redis cannot
    be reached."""
    name = method.__name__

    @functools.wraps(method)
    def call(self: "ResilientRedisCache", *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() < _down_until.get(self.location, -math.inf):
            return getattr(self.local, name)(*args, **kwargs)
        try:
            return method(self, *args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            _down_until[self.location] = time.monotonic() + RETRY_AFTER_S
            _warn(exc)
            return getattr(self.local, name)(*args, **kwargs)

    return call


def _starting_missing_counts(incr: Callable[..., int]) -> Callable[..., int]:
    """incr that starts a count whose key is missing. The callers add the key before they
    count, but an outage starting or ending between the two puts the add in one store and the
    count in the other, and Django's incr raises for a missing key."""

    @functools.wraps(incr)
    def count(self: Any, key: Any, delta: int = 1, version: int | None = None) -> int:
        try:
            return incr(self, key, delta, version)
        except ValueError:
            self.add(key, 0, version=version)
            return incr(self, key, delta, version)

    return count


class _MemoryCache(LocMemCache):
    incr = _starting_missing_counts(LocMemCache.incr)


def _warn(exc: Exception) -> None:
    global _last_warning
    if time.monotonic() - _last_warning > WARN_EVERY_S:
        _last_warning = time.monotonic()
        logger.warning(
            "The Redis cache cannot be reached (%s): counting in this process's memory, and "
            "trying Redis again every %d s",
            exc,
            RETRY_AFTER_S,
        )


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, standing in for it with a per-process memory cache while Redis is
    unreachable, and giving up on a host that does not answer within seconds rather than the
    operating system's minutes."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = {"socket_connect_timeout": 1, "socket_timeout": 2, **params.get("OPTIONS", {})}
        super().__init__(server, {**params, "OPTIONS": options})
        self.location = server
        # Memory caches of one name share their store within the process.
        self.local = _MemoryCache(f"redis-down:{server}", {"TIMEOUT": params.get("TIMEOUT", 300)})

    get = _fall_back(RedisCache.get)
    get_many = _fall_back(RedisCache.get_many)
    has_key = _fall_back(RedisCache.has_key)
    add = _fall_back(RedisCache.add)
    set = _fall_back(RedisCache.set)
    set_many = _fall_back(RedisCache.set_many)
    touch = _fall_back(RedisCache.touch)
    delete = _fall_back(RedisCache.delete)
    delete_many = _fall_back(RedisCache.delete_many)
    incr = _fall_back(_starting_missing_counts(RedisCache.incr))
    clear = _fall_back(RedisCache.clear)
