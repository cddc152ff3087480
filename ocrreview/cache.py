"""The cache holds only what can be done without for a while: copies of sessions (their rows
are in PostgreSQL), login-failure and API rate counts. When Redis is down or restarting, the
site goes on without it instead of answering every page, login and API call with a 500; the
limits are not enforced meanwhile."""

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

# Once a minute per process is enough to say so: every request would otherwise log it.
WARN_EVERY_S = 60.0
_last_warning = -math.inf  # time.monotonic() may be under a minute on a host just booted


def _without_redis(
    answer: Callable[..., Any],
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`answer`, called with the method's arguments, stands in for the method's result while
    Redis cannot be reached."""

    def wrap(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(self: RedisCache, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except (RedisConnectionError, RedisTimeoutError) as exc:
                global _last_warning
                if time.monotonic() - _last_warning > WARN_EVERY_S:
                    _last_warning = time.monotonic()
                    logger.warning(
                        "The Redis cache cannot be reached (%s): going on without it", exc
                    )
                return answer(*args, **kwargs)

        return call

    return wrap


def _default(key: str, default: Any = None, version: int | None = None) -> Any:
    return default


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, answering as an empty cache that keeps nothing while Redis is
    unreachable, and giving up on a host that does not answer within seconds rather than the
    operating system's minutes."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        options = {"socket_connect_timeout": 1, "socket_timeout": 2, **params.get("OPTIONS", {})}
        super().__init__(server, {**params, "OPTIONS": options})

    get = _without_redis(_default)(RedisCache.get)
    get_many = _without_redis(lambda *args, **kwargs: {})(RedisCache.get_many)
    has_key = _without_redis(lambda *args, **kwargs: False)(RedisCache.has_key)
    add = _without_redis(lambda *args, **kwargs: False)(RedisCache.add)
    set = _without_redis(_nothing)(RedisCache.set)
    set_many = _without_redis(lambda *args, **kwargs: [])(RedisCache.set_many)
    touch = _without_redis(lambda *args, **kwargs: False)(RedisCache.touch)
    delete = _without_redis(lambda *args, **kwargs: False)(RedisCache.delete)
    delete_many = _without_redis(_nothing)(RedisCache.delete_many)
    # No count is kept: a limit compared with it lets the request through.
    incr = _without_redis(lambda *args, **kwargs: 0)(RedisCache.incr)
    clear = _without_redis(lambda *args, **kwargs: False)(RedisCache.clear)
