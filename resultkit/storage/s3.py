"""``S3Storage``: key ``K`` at ``s3://bucket/prefix/K``, through s3fs."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import ConfigurationError, StorageError
from .base import validate_key
from .fsspec import FsspecStorage

__all__ = ["S3Storage", "bucket_and_prefix", "bucket_url_parts"]


def bucket_and_prefix(kind: str, bucket: object, prefix: object) -> tuple[str, str]:
    """Check a bucket name and key prefix; returns them with slashes trimmed from the prefix."""
    if not isinstance(bucket, str) or not bucket or "/" in bucket or ":" in bucket:
        raise ConfigurationError(
            f"{kind} bucket must be a bare bucket name such as 'my-results', got {bucket!r}"
        )
    if not isinstance(prefix, str):
        raise ConfigurationError(f"{kind} prefix must be a string such as 'team/results', got {prefix!r}")
    prefix = prefix.strip("/")
    if prefix:
        try:
            validate_key(prefix)
        except StorageError as exc:
            raise ConfigurationError(f"{kind} prefix {prefix!r} is not usable: {exc}") from None
    return bucket, prefix


def bucket_url_parts(url: str) -> tuple[str, str]:
    """``"s3://bucket/some/prefix"`` -> ``("bucket", "some/prefix")``; malformed is ``ConfigurationError``."""
    scheme, _, rest = url.partition("://")
    bucket, _, prefix = rest.partition("/")
    if not bucket or any(c in rest for c in "?#"):
        protocol = scheme.lower()
        raise ConfigurationError(
            f"storage URL {url!r} is malformed; use '{protocol}://bucket' or '{protocol}://bucket/prefix' "
            "(options such as endpoint_url go to resolve_storage(url, endpoint_url=...), "
            "S3Storage(...) / GCSStorage(...) or a saved block)"
        )
    return bucket, prefix


class S3Storage(FsspecStorage):
    """Records in an S3 bucket (or any S3-compatible service via ``endpoint_url=``).

    Credentials come from the AWS default chain, or from the environment variables named
    by ``key_env``/``secret_env``/``token_env``; they are never saved in a block.

    >>> S3Storage("my-bucket", "results", endpoint_url="http://localhost:9000")  # doctest: +SKIP
    """

    block_type = "s3"
    # Without it s3fs sends a HEAD before every GET (to plan parallel ranged reads):
    # a cache hit should be one request.
    _cat_options: ClassVar[dict[str, Any]] = {"max_concurrency": 1}

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        key_env: str | None = None,
        secret_env: str | None = None,
        token_env: str | None = None,
        **s3fs_options: Any,
    ) -> None:
        self.bucket, self.prefix = bucket_and_prefix("S3Storage", bucket, prefix)
        env = {"key": key_env, "secret": secret_env, "token": token_env}
        super().__init__(
            f"s3://{self.bucket}/{self.prefix}".rstrip("/"),
            env_options={name: var for name, var in env.items() if var is not None},
            **s3fs_options,
        )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, prefix={self.prefix!r})"

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Storage:
        """``s3://bucket/prefix`` (or ``s3a://``) -> ``S3Storage("bucket", "prefix", **options)``."""
        return cls(*bucket_url_parts(url), **options)

    def to_block(self) -> dict[str, Any]:
        block: dict[str, Any] = {"bucket": self.bucket, "prefix": self.prefix}
        for name, var in self.env_options.items():
            block[f"{name}_env"] = var
        block.update(self._transfer)
        block.update(self.options)
        return block
