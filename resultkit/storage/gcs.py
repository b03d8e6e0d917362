"""``GCSStorage``: key ``K`` at ``gs://bucket/prefix/K``, through gcsfs."""

from __future__ import annotations

import logging
from typing import Any

from .fsspec import FsspecStorage
from .s3 import bucket_and_prefix, bucket_url_parts

__all__ = ["GCSStorage"]


class _EmptyRangeFilter(logging.Filter):
    """Drops gcsfs's ERROR traceback for "416 range not satisfiable".

    Reading the head of an empty object gets a 416, which ``read_head`` answers with
    ``b""``: the traceback gcsfs logs for it before raising would report a non-problem.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and record.getMessage().endswith(", 416"))


_empty_range_filter = _EmptyRangeFilter()


class GCSStorage(FsspecStorage):
    """Records in a Google Cloud Storage bucket.

    Credentials come from Google's default chain, or from the environment variable named
    by ``token_env`` (its value is passed to gcsfs as ``token``: a path to a service
    account file, ``"anon"``, ...); they are never saved in a block.

    >>> GCSStorage("my-bucket", "results", project="my-project")  # doctest: +SKIP
    """

    block_type = "gcs"

    def __init__(self, bucket: str, prefix: str = "", *, token_env: str | None = None,
                 **gcsfs_options: Any) -> None:
        self.bucket, self.prefix = bucket_and_prefix("GCSStorage", bucket, prefix)
        logging.getLogger("gcsfs").addFilter(_empty_range_filter)  # once: filters are a set
        super().__init__(
            f"gs://{self.bucket}/{self.prefix}".rstrip("/"),
            env_options={"token": token_env} if token_env is not None else None,
            **gcsfs_options,
        )

    def __repr__(self) -> str:
        return f"GCSStorage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> GCSStorage:
        """``gs://bucket/prefix`` (or ``gcs://``) -> ``GCSStorage("bucket", "prefix", **options)``."""
        return cls(*bucket_url_parts(url), **options)

    def to_block(self) -> dict[str, Any]:
        block: dict[str, Any] = {"bucket": self.bucket, "prefix": self.prefix}
        if "token" in self.env_options:
            block["token_env"] = self.env_options["token"]
        block.update(self._transfer)
        block.update(self.options)
        return block
