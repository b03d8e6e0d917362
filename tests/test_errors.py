import pytest

import resultkit
from resultkit.errors import RecordNotFound, StorageError


def test_every_error_derives_from_resultkit_error():
    for name in ("ConfigurationError", "HashError", "SerializationError", "StorageError",
                 "RecordCorruptError", "LockTimeout", "RecordNotFound", "TransactionError",
                 "LockNotHeldError", "TransactionValueNotFound"):
        assert issubclass(getattr(resultkit, name), resultkit.ResultkitError)


def test_storage_error_carries_the_computed_value():
    err = StorageError("commit failed", value={"a": 1})
    assert err.has_value and err.value == {"a": 1}
    assert not StorageError("x").has_value


def test_record_not_found_is_a_key_error_with_a_readable_message():
    with pytest.raises(KeyError):
        raise RecordNotFound("no record at 'abc'")
    assert str(RecordNotFound("no record at 'abc'")) == "no record at 'abc'"


def test_lock_and_transaction_value_errors_are_also_the_builtin_types_prefect_raises():
    assert issubclass(resultkit.LockNotHeldError, ValueError)
    missing = resultkit.TransactionValueNotFound("no value 'x' in the transaction; set it first")
    assert isinstance(missing, KeyError) and isinstance(missing, ValueError)
    assert isinstance(missing, resultkit.TransactionError)
    assert str(missing) == "no value 'x' in the transaction; set it first"  # not repr()'d
