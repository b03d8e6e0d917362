"""``RedisLockManager``: leased locks for machines sharing a Redis server.

A lock is the Redis key ``resultkit:lock:<key>`` holding the holder id, set with
``SET NX PX`` so it expires on its own when its holder dies. Taking, renewal and
release check the holder and act in one Lua script, so only the owner can do
either. The sync face uses ``redis.Redis``, the async face ``redis.asyncio.Redis``
(one client per event loop), both over the same scripts and the same waiting
algorithm; while the server is unreachable, waiting calls retry with backoff until
their timeout.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

from ..errors import ConfigurationError
from .base import PollingLockManager, Unreachable, check_lock_args, not_held_error

__all__ = ["RedisLockManager"]

_PREFIX = "resultkit:lock:"
_INSTALL_HINT = "RedisLockManager needs redis-py: pip install 'resultkit[redis]'"

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
# 1: released; 0: no such lock (a no-op); -1: held by someone else.
_RELEASE = """
local current = redis.call('GET', KEYS[1])
if current == false then
  return 0
elseif current == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return -1
"""
_EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_SCRIPTS = {"acquire": _ACQUIRE, "release": _RELEASE, "extend": _EXTEND}


def _millis(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):  # str when decode_responses=True
        return value
    return bytes(value).decode()


async def _closer(client: Any) -> AsyncIterator[None]:
    try:
        yield
    finally:  # the loop is shutting down (asyncio.run's shutdown_asyncgens)
        await client.aclose()


def _close_at_loop_shutdown(client: Any) -> AsyncIterator[None]:
    """Close ``client``'s connections when its event loop shuts down, before it closes.

    An async generator started on a loop is finalized by ``loop.shutdown_asyncgens()``,
    which ``asyncio.run`` calls; its ``finally`` then runs on that loop. The caller keeps
    the generator alive (the loop holds it weakly). Its first step has no awaits, so it is
    started here without a round trip through the loop.
    """
    closer = _closer(client)
    with contextlib.suppress(StopIteration):
        closer.__anext__().send(None)  # type: ignore[attr-defined]
    return closer


def _require_redis() -> None:
    try:
        found = importlib.util.find_spec("redis") is not None
    except ImportError:  # an import hook that refuses it: as good as not installed
        found = False
    if not found:
        raise ConfigurationError(_INSTALL_HINT)


class RedisLockManager(PollingLockManager):
    """Locks shared by every process that reaches one Redis server.

    Give a URL (``redis://[user:password@]host:6379/0``, ``rediss://`` for TLS), or
    Prefect's connection arguments ``host``, ``port``, ``db``, ``username``,
    ``password``, ``ssl``. Other ``redis_kwargs`` go to the redis-py clients. Clients
    are built on first use, so the manager pickles (to workers) without a connection.

    >>> locks = RedisLockManager("redis://localhost:6379/0")   # doctest: +SKIP
    >>> locks.acquire_lock("results/abc", holder="worker-1", hold_timeout=60)  # doctest: +SKIP
    True
    >>> RedisLockManager(host="redis.internal", port=6380).url
    'redis://redis.internal:6380/0'
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        db: int | None = None,
        username: str | None = None,
        password: str | None = None,
        ssl: bool | None = None,
        **redis_kwargs: Any,
    ) -> None:
        _require_redis()
        given = {"host": host, "port": port, "db": db, "username": username,
                 "password": password, "ssl": ssl}
        if url is not None:
            if not isinstance(url, str) or "://" not in url:
                raise ConfigurationError(
                    f"RedisLockManager url must be a Redis URL such as 'redis://host:6379/0', "
                    f"got {url!r} (or pass host=..., port=... instead of a URL)"
                )
            named = [name for name, value in given.items() if value is not None]
            if named:
                raise ConfigurationError(
                    f"RedisLockManager got both a url and {', '.join(named)}; "
                    "pass either the URL or the connection arguments"
                )
            parts = urlsplit(url)
            path_db = parts.path.strip("/")
            self.host = parts.hostname or "localhost"
            self.port = parts.port or 6379
            self.db = int(path_db) if path_db.isdigit() else 0
            self.username = unquote(parts.username) if parts.username else None
            self.password = unquote(parts.password) if parts.password else None
            self.ssl = parts.scheme == "rediss"
            self.url = url
        else:
            self.host = host or "localhost"
            self.port = 6379 if port is None else port
            self.db = 0 if db is None else db
            self.username, self.password, self.ssl = username, password, bool(ssl)
            self.url = f"{'rediss' if self.ssl else 'redis'}://{self.host}:{self.port}/{self.db}"
            self._connection = {"host": self.host, "port": self.port, "db": self.db,
                                "username": username, "password": password, "ssl": self.ssl}
        self._from_url = url is not None
        self.redis_kwargs = redis_kwargs
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        # One asyncio client per event loop: (client, its scripts, its closer).
        self._async: dict[Any, tuple[Any, dict[str, Any], Any]] = {}

    def __repr__(self) -> str:
        if self.password is not None and self._from_url:
            return f"RedisLockManager({self.url.replace(self.password, '***')!r})"
        return f"RedisLockManager({self.url!r})"

    def __getstate__(self) -> dict[str, Any]:
        connection = {"url": self.url} if self._from_url else {
            "host": self.host, "port": self.port, "db": self.db, "username": self.username,
            "password": self.password, "ssl": self.ssl}
        return {"connection": connection, "redis_kwargs": self.redis_kwargs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["connection"], **state["redis_kwargs"])  # type: ignore[misc]

    # -- clients --------------------------------------------------------------------------

    def _make_client(self, module: Any) -> Any:
        if self._from_url:
            return module.Redis.from_url(self.url, **self.redis_kwargs)
        return module.Redis(**self._connection, **self.redis_kwargs)

    @property
    def client(self) -> Any:
        """The ``redis.Redis`` client, created on first use."""
        if self._client is None:
            try:
                import redis
            except ImportError:
                raise ConfigurationError(_INSTALL_HINT) from None
            self._client = self._make_client(redis)
        return self._client

    @property
    def async_client(self) -> Any:
        """The ``redis.asyncio.Redis`` client of the running event loop, created on first use.

        An asyncio client belongs to the loop that made its connections, so each loop
        gets its own.
        """
        return self._async_state()[0]

    def _async_state(self) -> tuple[Any, dict[str, Any]]:
        import asyncio

        loop = asyncio.get_running_loop()
        state = self._async.get(loop)
        if state is None:
            try:
                import redis.asyncio
            except ImportError:
                raise ConfigurationError(_INSTALL_HINT) from None
            for other in list(self._async):  # list(): other threads' loops may add theirs
                if other.is_closed():
                    self._async.pop(other, None)
            client = self._make_client(redis.asyncio)
            state = self._async[loop] = (client, {}, _close_at_loop_shutdown(client))
        return state[0], state[1]

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """Turn "cannot reach the server" into :class:`Unreachable`, naming the URL."""
        import redis

        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError) as exc:
            raise Unreachable(
                f"RedisLockManager cannot reach {self!r} ({type(exc).__name__}: {exc}); check "
                "the URL and that redis-server is running and reachable from this machine"
            ) from exc

    def _script(self, client: Any, cache: dict[str, Any], name: str) -> Any:
        script = cache.get(name)
        if script is None:
            script = cache[name] = client.register_script(_SCRIPTS[name])
        return script

    def _run(self, name: str, key: str, *args: Any) -> int:
        with self._reaching():
            script = self._script(self.client, self._scripts, name)
            return int(script(keys=[_PREFIX + key], args=list(args)))

    async def _arun(self, name: str, key: str, *args: Any) -> int:
        with self._reaching():
            client, cache = self._async_state()
            script = self._script(client, cache, name)
            return int(await script(keys=[_PREFIX + key], args=list(args)))

    # -- protocol -------------------------------------------------------------------------

    def _try_acquire(self, key: str, holder: str, hold_timeout: float) -> bool:
        return bool(self._run("acquire", key, holder, _millis(hold_timeout)))

    async def _atry_acquire(self, key: str, holder: str, hold_timeout: float) -> bool:
        return bool(await self._arun("acquire", key, holder, _millis(hold_timeout)))

    async def _ais_free(self, key: str) -> bool:
        with self._reaching():
            client, _ = self._async_state()
            return not await client.exists(_PREFIX + key)

    def release_lock(self, key: str, holder: str) -> None:
        """Release ``holder``'s lock on ``key``; ``LockNotHeldError`` if another holder holds it.

        Releasing a lock that no longer exists (released, or its lease ran out) does nothing.
        """
        check_lock_args(key, holder)
        if self._run("release", key, holder) < 0:
            raise not_held_error(key, holder, self.lock_holder(key))

    def extend_lock(self, key: str, holder: str, hold_timeout: float) -> bool:
        """Renew ``holder``'s lease on ``key`` for ``hold_timeout`` seconds; False if not held."""
        check_lock_args(key, holder, hold_timeout)
        return bool(self._run("extend", key, holder, _millis(hold_timeout)))

    def lock_holder(self, key: str) -> str | None:
        """The holder of the lock on ``key``, or None."""
        with self._reaching():
            return _text(self.client.get(_PREFIX + key))

    def is_locked(self, key: str) -> bool:
        """Whether someone holds the lock on ``key``."""
        with self._reaching():
            return bool(self.client.exists(_PREFIX + key))
