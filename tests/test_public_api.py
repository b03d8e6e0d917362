"""The public names: adding or losing one is a visible change (httpx's exported-members test)."""

from __future__ import annotations

import importlib

import pytest

import resultkit

PUBLIC = {
    "ConfigurationError", "Flow", "HashError", "LockNotHeldError", "LockTimeout",
    "RecordCorruptError", "RecordNotFound", "ResultkitError", "SerializationError", "State",
    "StorageError", "Task", "TransactionError", "TransactionValueNotFound",
    "__version__", "flow", "get_transaction", "settings", "task", "transaction",
    "RunTimeout", "task_input_hash", "unmapped",
}

# The names each layer promises (docs/architecture.md, SPEC); layers may add more.
LAYERS = {
    "resultkit.storage": {"Storage", "LocalStorage", "MemoryStorage", "FsspecStorage", "S3Storage",
                          "GCSStorage", "resolve_storage", "load_storage", "validate_key"},
    "resultkit.serializers": {"Serializer", "PickleSerializer", "JSONSerializer",
                              "CompressedSerializer", "resolve_serializer"},
    "resultkit.results": {"ResultStore", "ResultRecord", "ResultRecordMetadata", "ResultLiteral",
                          "ResultReference"},
    "resultkit.transactions": {"transaction", "Transaction", "get_transaction", "TransactionState",
                               "IsolationLevel", "CommitMode", "LockManager", "MemoryLockManager",
                               "FileLockManager", "RedisLockManager", "default_lock_manager",
                               "AsyncTransaction", "atransaction"},
    "resultkit.task_runners": {"TaskRunner", "ThreadPoolTaskRunner", "ProcessPoolTaskRunner",
                               "DaskTaskRunner", "RayTaskRunner"},
    "resultkit.futures": {"TaskFuture", "FutureList", "unmapped", "wait", "as_completed"},
    "resultkit.context": {"capture", "restore", "ContextSnapshot", "get_run_context"},
    "resultkit.cache_policies": {"DEFAULT", "INPUTS", "TASK_SOURCE", "FLOW_PARAMETERS", "RUN_ID",
                                 "NO_CACHE", "Inputs", "CacheKeyFnPolicy", "CompoundCachePolicy",
                                 "CachePolicy", "CacheKeyContext", "capture_source", "hash_value",
                                 "CODE", "Code", "Packages", "Files"},
}


def test_resultkit_exports_exactly_the_front_door_and_the_errors():
    assert set(resultkit.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(resultkit, name) is not None
    assert resultkit.transaction is importlib.import_module("resultkit.transactions").transaction


def test_front_door_names_show_the_public_module():
    for name in ("task", "flow", "settings", "State", "Task", "Flow"):
        assert getattr(resultkit, name).__module__ == "resultkit"


@pytest.mark.parametrize("module_name", sorted(LAYERS))
def test_each_layer_exports_its_contract(module_name):
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    assert LAYERS[module_name] <= exported, f"{module_name} lacks {sorted(LAYERS[module_name] - exported)}"
    for name in exported:
        assert not name.startswith("_") and getattr(module, name) is not None


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'tsak'"):
        resultkit.tsak
