"""Each library's way of caching a function's result on local disk, behind one call.

``wrap(library, fn, folder)`` returns the cached version of ``fn`` storing under
``folder``. Imports happen inside, so a child only loads the library it measures,
and the Prefect virtual environment (which has no resultkit) can import this module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import Unavailable

__all__ = ["HERD_LIBRARIES", "TASK_LIBRARIES", "peer_env", "wrap"]

#: Libraries compared on task-level caching, resultkit first.
TASK_LIBRARIES = ("resultkit", "diskcache memoize", "checkpointer", "joblib Memory", "cachier", "prefect")
#: The herd also tries diskcache's documented barrier recipe.
HERD_LIBRARIES = (*TASK_LIBRARIES[:2], "diskcache memoize+barrier", *TASK_LIBRARIES[2:])


def peer_env(folder: Path, process_tag: str = "") -> dict[str, str]:
    """Environment overrides so a child's library keeps all its state under ``folder``.

    Prefect runs ephemeral (no ``PREFECT_API_URL``): each ``process_tag`` gets its own
    ``PREFECT_HOME`` (its SQLite database), while results and locks are shared.
    """
    return {
        "RESULTKIT_HOME": str(folder / "resultkit-home"),
        "PREFECT_HOME": str(folder / f"prefect-home{process_tag}"),
        "PREFECT_LOCAL_STORAGE_PATH": str(folder / "prefect-storage"),
        "PREFECT_LOGGING_LEVEL": "ERROR",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # the ephemeral server's first start (SQLite migrations) takes ~45 s on this machine
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "240",
    }


def wrap(library: str, fn: Callable[..., Any], folder: Path, serializable: bool = False) -> Callable[..., Any]:
    """``fn`` cached by ``library`` under ``folder``; ``serializable`` asks for run-once locking."""
    folder.mkdir(parents=True, exist_ok=True)
    if library == "resultkit":
        try:
            from resultkit import task
            from resultkit.cache_policies import INPUTS
        except ImportError as exc:
            raise Unavailable(f"resultkit piece missing: {exc}") from None
        # Storage comes from RESULTKIT_HOME (set by the parent): no configuration but the policy.
        policy = INPUTS.configure(isolation_level="SERIALIZABLE") if serializable else INPUTS
        return task(cache_policy=policy)(fn)  # type: ignore[no-any-return]
    if library.startswith("diskcache"):
        import diskcache

        cache = diskcache.Cache(str(folder / "diskcache"))
        memoized = cache.memoize()(fn)
        if library.endswith("+barrier"):
            return diskcache.barrier(cache, diskcache.Lock)(memoized)  # type: ignore[no-any-return]
        return memoized  # type: ignore[no-any-return]
    if library == "checkpointer":
        from checkpointer import checkpoint

        return checkpoint(directory=folder / "checkpointer", verbosity=0)(fn)  # type: ignore[no-any-return]
    if library == "joblib Memory":
        import joblib

        return joblib.Memory(str(folder / "joblib"), verbose=0).cache(fn)  # type: ignore[no-any-return]
    if library == "cachier":
        from cachier import cachier

        return cachier(cache_dir=str(folder / "cachier"))(fn)  # type: ignore[no-any-return]
    if library == "prefect":
        from prefect import task as prefect_task
        from prefect.cache_policies import INPUTS as PREFECT_INPUTS

        if serializable:
            from prefect.locking.filesystem import FileSystemLockManager

            policy = PREFECT_INPUTS.configure(
                isolation_level="SERIALIZABLE",
                lock_manager=FileSystemLockManager(lock_files_directory=folder / "prefect-locks"),
            )
        else:
            policy = PREFECT_INPUTS
        return prefect_task(cache_policy=policy, persist_result=True)(fn)  # type: ignore[no-any-return]
    raise Unavailable(f"unknown library {library!r}")
