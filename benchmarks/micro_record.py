"""Record header figures (not a test): ``.venv/bin/python benchmarks/micro_record.py``.

Encode and decode of one header as a cache hit and a write see it: per-call times in
microseconds, the best of several timeit repeats (CPU time, so a busy machine skews less).
To compare two checkouts, run this script under each in turn (A B A B ...) and take medians.
"""

from __future__ import annotations

import time
import timeit
from datetime import datetime, timedelta, timezone

from resultkit.results.record import ResultRecordMetadata, decode_header, encode_header

CREATED = datetime(2026, 11, 22, 16, 34, 16, 123456, tzinfo=timezone.utc)


def sample(commit: str | None = None) -> ResultRecordMetadata:
    """A header as a task call writes it: pickle serializer, expiry, task name and key parts."""
    metadata = ResultRecordMetadata(
        storage_key="tasks/train/3f2a9c0b1d4e5f60718293a4b5c6d7e8",
        serializer={"type": "pickle", "picklelib": "cloudpickle", "protocol": 5},
        created=CREATED, expiration=CREATED + timedelta(days=1), payload_size=1234,
        payload_hash="xxh3_128:00112233445566778899aabbccddeeff", resultkit_version="0.1.0",
        extra={"task_name": "pipeline.train", "key_parts": {"inputs": "ab12cd34", "task_source": "9f8e"}},
    )
    metadata.commit = commit
    return metadata


def per_call_us(statement: object, number: int = 20_000, repeat: int = 7) -> float:
    timer = timeit.Timer(statement, timer=time.process_time)  # type: ignore[arg-type]
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    for label, metadata in (("v1", sample()), ("v2", sample(commit="c0ffee00"))):
        line = encode_header(metadata)
        fields = metadata.to_dict()
        print(f"header {label} ({len(line)} B): "
              f"encode_header {per_call_us(lambda: encode_header(metadata)):.2f} us, "
              f"decode_header {per_call_us(lambda: decode_header(line)):.2f} us, "
              f"to_dict {per_call_us(metadata.to_dict):.2f} us, "
              f"from_dict {per_call_us(lambda: ResultRecordMetadata.from_dict(fields)):.2f} us")


if __name__ == "__main__":
    main()
