"""``RedisLockManager``: leased locks for machines sharing a Redis server.

A lock is the Redis key ``resultkit:lock:<key>`` holding the holder id, set with
``SET NX PX`` so it expires on its own when its holder dies. Renewal and release
check the holder and act in one Lua script, so only the owner can do either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigurationError
from .base import PollingLockManager, check_lock_args, not_held_error

__all__ = ["RedisLockManager"]

_PREFIX = "resultkit:lock:"

# Take the lock if free, or renew it if the caller already holds it.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
elseif current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisLockManager(PollingLockManager):
    """Locks shared by every process that reaches one Redis server.

    ``redis_kwargs`` go to ``redis.Redis.from_url``. The client is built on first
    use, so the manager pickles (to workers) without a live connection.

    >>> locks = RedisLockManager("redis://localhost:6379/0")   # doctest: +SKIP
    >>> locks.acquire_lock("results/abc", holder="worker-1", hold_timeout=60)  # doctest: +SKIP
    True
    """

    def __init__(self, url: str = "redis://localhost:6379/0", **redis_kwargs: Any) -> None:
        if not isinstance(url, str) or "://" not in url:
            raise ConfigurationError(
                f"RedisLockManager url must be a Redis URL such as 'redis://host:6379/0', got {url!r}"
            )
        self.url = url
        self.redis_kwargs = redis_kwargs
        self._client: Any = None
        self._scripts: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RedisLockManager({self.url!r})"

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "redis_kwargs": self.redis_kwargs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], **state["redis_kwargs"])  # type: ignore[misc]

    @property
    def client(self) -> Any:
        """The ``redis.Redis`` client, created on first use."""
        if self._client is None:
            try:
                import redis
            except ImportError:
                raise ConfigurationError(
                    "RedisLockManager needs redis-py: pip install 'resultkit[redis]'"
                ) from None
            self._client = redis.Redis.from_url(self.url, **self.redis_kwargs)
        return self._client

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turn "cannot reach the server" into a ConfigurationError that names the URL."""
        import redis

        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError) as exc:
            raise ConfigurationError(
                f"RedisLockManager cannot reach {self.url!r} ({type(exc).__name__}: {exc}); check "
                "the URL and that redis-server is running and reachable from this machine"
            ) from exc

    def _run(self, name: str, source: str, key: str, *args: Any) -> int:
        with self._reaching():
            script = self._scripts.get(name)
            if script is None:
                script = self._scripts[name] = self.client.register_script(source)
            return int(script(keys=[_PREFIX + key], args=list(args)))

    def _try_acquire(self, key: str, holder: str, hold_timeout: float) -> bool:
        return bool(self._run("acquire", _ACQUIRE, key, holder, _millis(hold_timeout)))

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``holder``'s lock on ``key``; raises ``TransactionError`` if not held by it."""
        check_lock_args(key, holder)
        if not self._run("release", _RELEASE, key, holder):
            raise not_held_error(key, holder, self.lock_holder(key))

    def extend_lock(self, key: str, holder: str, hold_timeout: float) -> bool:
        """Renew ``holder``'s lease on ``key`` for ``hold_timeout`` seconds; False if not held."""
        check_lock_args(key, holder, hold_timeout)
        return bool(self._run("extend", _EXTEND, key, holder, _millis(hold_timeout)))

    def lock_holder(self, key: str) -> str | None:
        """The holder of the lock on ``key``, or None."""
        with self._reaching():
            value = self.client.get(_PREFIX + key)
        if value is None or isinstance(value, str):  # str when decode_responses=True
            return value
        return bytes(value).decode()

    def is_locked(self, key: str) -> bool:
        """Whether someone holds the lock on ``key``."""
        with self._reaching():
            return bool(self.client.exists(_PREFIX + key))
