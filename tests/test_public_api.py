"""The public surface, pinned in one place (as httpx's test_exported_members): adding or losing
a public name is a visible change, and every public class or function shows a public module."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from types import FunctionType, ModuleType

import pytest

import resultkit

#: Every public module and exactly the names it exports.
PUBLIC: dict[str, set[str]] = {
    "resultkit": {
        "ConfigurationError", "Flow", "HashError", "LockNotHeldError", "LockTimeout",
        "RecordCorruptError", "RecordNotFound", "ResultkitError", "RunTimeout", "SerializationError",
        "State", "StorageError", "Task", "TransactionError", "TransactionValueNotFound", "__version__",
        "flow", "get_transaction", "settings", "task", "task_input_hash", "transaction", "unmapped",
    },
    "resultkit.storage": {
        "RESERVED_PREFIX", "CachedStorage", "FsspecStorage", "GCSStorage", "LocalStorage",
        "MemoryStorage", "S3Storage", "Storage", "delete_block", "list_blocks", "load_storage",
        "resolve_storage", "save_block", "validate_key", "register_storage", "LockManagerSpec", "TempFile",
    },
    "resultkit.serializers": {
        "CompressedSerializer", "JSONSerializer", "PickleSerializer", "Serializer",
        "register_json_type", "register_serializer_type", "resolve_serializer",
    },
    "resultkit.results": {"ResultLiteral", "ResultRecord", "ResultRecordMetadata", "ResultReference",
                          "ResultStore"},
    "resultkit.transactions": {
        "AsyncTransaction", "CommitMode", "FileLockManager", "IsolationLevel", "LockManager",
        "MemoryLockManager", "RedisLockManager", "Transaction", "TransactionState", "atransaction",
        "default_lock_manager", "get_transaction", "register_default_store", "transaction",
    },
    "resultkit.cache_policies": {
        "CODE", "DEFAULT", "FLOW_PARAMETERS", "INPUTS", "NO_CACHE", "RUN_ID", "TASK_SOURCE",
        "CacheKeyContext", "CacheKeyFnPolicy", "CachePolicy", "Code", "CompoundCachePolicy", "Files",
        "FlowParameters", "Hasher", "Inputs", "NoCache", "Packages", "PolicyNotImplementedError",
        "RunId", "TaskRunInfo", "TaskSource", "capture_source", "hash_value",
    },
    "resultkit.locking": {
        "DEFAULT_HOLD_TIMEOUT", "FileLockManager", "LeasedLockManager", "LockManager",
        "MemoryLockManager", "ObjectStoreLockManager", "RedisLockManager", "default_lock_manager",
        "lock_manager_from_spec",
    },
    # Conformance suites for third-party backends (imports pytest; the `testing` extra).
    "resultkit.testing": {"LeasedLockManagerContract", "LockManagerContract", "SafeSerializerContract",
                          "SerializerContract", "StorageContract", "assert_same"},
    # The front door's public modules (Prefect's shapes: resultkit.tasks.task_input_hash, ...).
    "resultkit.errors": {
        "ConfigurationError", "HashError", "LockNotHeldError", "LockTimeout", "RecordCorruptError",
        "RecordNotFound", "ResultkitError", "RunTimeout", "SerializationError", "StorageError",
        "TransactionError", "TransactionValueNotFound",
    },
    "resultkit.tasks": {"Task", "task", "task_input_hash"},
    "resultkit.flows": {"Flow", "flow"},
    "resultkit.states": {"State", "StateName"},
    "resultkit.futures": {"DoneAndNotDoneFutures", "FutureList", "TaskFuture", "as_completed",
                          "resolve_arguments", "run_submitted", "unmapped", "wait"},
    "resultkit.context": {"BoundCall", "ContextSnapshot", "FlowRunContext", "FlowRunInfo", "capture",
                          "get_run_context", "restore", "run_context"},
    "resultkit.task_runners": {"DaskTaskRunner", "ProcessPoolTaskRunner", "RayTaskRunner", "TaskRunner",
                               "ThreadPoolTaskRunner", "current_task_runner"},
}

#: The packages whose namespace is their interface: nothing public-looking beyond ``__all__``.
PACKAGES = ["resultkit", "resultkit.cache_policies", "resultkit.locking", "resultkit.results",
            "resultkit.serializers", "resultkit.storage", "resultkit.testing", "resultkit.transactions"]


def _exported(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    return [(name, getattr(module, name)) for name in module.__all__]  # lazy names load here


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_exported_names_are_pinned(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(PUBLIC[module_name])
    for name, value in _exported(module_name):
        assert value is not None and (not name.startswith("_") or name == "__version__")


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_exported_classes_and_functions_show_a_public_module(module_name: str) -> None:
    for name, value in _exported(module_name):
        if isinstance(value, (type, FunctionType)):
            assert value.__module__ in PUBLIC, f"{module_name}.{name} shows {value.__module__}"
            # What pickle does with the name shown: it must lead back to the same object.
            home = importlib.import_module(value.__module__)
            assert getattr(home, value.__qualname__) is value, f"{module_name}.{name}"


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_show_no_public_name_beyond_all(package: str) -> None:
    _exported(package)
    module = importlib.import_module(package)
    hidden = [name for name, value in vars(module).items()
              if not name.startswith("_") and not isinstance(value, ModuleType) and name not in module.__all__
              and isinstance(value, (type, FunctionType)) and value.__module__.startswith("resultkit")]
    assert hidden == [], f"{package} has public-looking names outside __all__: {hidden}"


def test_settings_is_the_function_and_its_module_is_private() -> None:
    from resultkit import settings

    assert settings is resultkit.settings and callable(settings)
    with settings(persist_result=True):
        pass
    assert importlib.import_module("resultkit._settings").settings is settings
    # The package ships no `settings` module for the function to shadow.
    assert not (Path(resultkit.__file__).parent / "settings.py").exists()


def test_public_classes_pickle_by_their_public_name(tmp_path: Path) -> None:
    from resultkit.storage import LocalStorage
    from resultkit.transactions import CommitMode, IsolationLevel

    storage = LocalStorage(str(tmp_path))
    assert pickle.loads(pickle.dumps(storage)) == storage
    assert pickle.loads(pickle.dumps(IsolationLevel.SERIALIZABLE)) is IsolationLevel.SERIALIZABLE
    assert pickle.loads(pickle.dumps(CommitMode.LAZY)) is CommitMode.LAZY


def test_the_top_level_transaction_is_the_transactions_one() -> None:
    assert resultkit.transaction is importlib.import_module("resultkit.transactions").transaction


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'tsak'"):
        resultkit.tsak
