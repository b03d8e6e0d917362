"""Big objects on S3 and GCS: parallel multipart uploads from buffers, parallel ranged reads into one.

Writes: the caller's buffers (a record's header and its serializer's out-of-band
buffers) are cut into parts by slicing memoryviews, never joined; each part is sent as
a :class:`PartBody` that botocore and aiohttp read in place. On S3 the parts form one
multipart upload, completed only when every part arrived and aborted on any error; on
GCS they are uploaded as objects under a reserved folder and composed into the target
in one request, then deleted. Either way no reader sees a partial object, and
``resultkit gc`` sweeps what a writer that died left.

Reads: :class:`ObjectHead` is the first bytes of an object together with the object's
total size and version (ETag / VersionId on S3, generation on GCS), taken from the
ranged read that fetched them. The rest is fetched by ranged GETs pinned to that
version, at most ``concurrency`` at a time, each written straight into the caller's
memory; a replaced object fails the pin (:class:`~resultkit.storage.retry.ObjectChanged`)
and is never served mixed.

Everything runs on fsspec's event loop through s3fs's and gcsfs's own async calls.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from .._types import Buffer
from .retry import ObjectChanged

__all__ = ["GCS_MAX_COMPOSE", "ObjectHead", "PartBody", "gcs_head", "gcs_read_into", "gcs_upload",
           "plan_compose_parts", "plan_parts", "s3_head", "s3_put", "s3_read_into", "s3_upload", "wave_size"]

_SEND_SLICE = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class ObjectHead(bytes):
    """The first bytes of a larger object, with the object's total ``size`` and ``version`` pin.

    ``version`` is the keyword arguments that pin a read to this version of the object
    (``{"IfMatch": etag}`` on S3, ``{"generation": ...}`` on GCS).
    """

    size: int
    version: dict[str, str]

    def __new__(cls, data: bytes, size: int, version: dict[str, str]) -> ObjectHead:
        head = super().__new__(cls, data)
        head.size = size
        head.version = version
        return head


def _total_size(content_range: str | None) -> int | None:
    match = _CONTENT_RANGE.fullmatch(content_range or "")
    if match is None or match.group(3) == "*":
        return None
    return int(match.group(3))


class PartBody:
    """One upload part: consecutive memoryview slices read in place (no join, no copy).

    botocore reads it (``read``/``seek``/``tell``/``len``) to checksum and sign it;
    aiohttp sends it as an async iterable of the slices, from the current position.
    """

    def __init__(self, views: Sequence[memoryview]) -> None:
        self._views = list(views)
        self._size = sum(view.nbytes for view in self._views)
        self._position = 0

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        """Current position."""
        return self._position

    def seekable(self) -> bool:
        """Always True."""
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move to ``offset`` (from the start, current position or end, as ``io``)."""
        base = (0, self._position, self._size)[whence]
        self._position = max(0, min(self._size, base + offset))
        return self._position

    def _slices(self, size: int) -> list[memoryview]:
        start, end = self._position, min(self._size, self._position + size)
        pieces: list[memoryview] = []
        offset = 0
        for view in self._views:
            if offset >= end:
                break
            if offset + view.nbytes > start:
                pieces.append(view[max(0, start - offset) : end - offset])
            offset += view.nbytes
        self._position = end
        return pieces

    def read(self, size: int | None = -1) -> bytes | memoryview:
        """Up to ``size`` bytes (all that is left by default): a view when they lie in one buffer."""
        pieces = self._slices(self._size if size is None or size < 0 else size)
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)  # across a buffer boundary (checksums read 1 MiB at a time)

    def __aiter__(self) -> AsyncIterator[memoryview]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[memoryview]:
        # In slices of at most 1 MiB: aiohttp waits for the socket to drain between writes,
        # so a part in flight holds no copy of itself in the transport's buffer.
        for piece in self._slices(self._size):
            for start in range(0, piece.nbytes, _SEND_SLICE):
                yield piece[start : start + _SEND_SLICE]


def wave_size(total: int, part_size: int, concurrency: int) -> int:
    """The size of each part or range when ``total`` bytes move ``concurrency`` at a time.

    At least ``part_size``, and large enough that all of them move in one wave: fewer
    requests (each costs the server a whole-object read on some S3 implementations)
    and no part waits for another.
    """
    per_request = -(-total // max(1, concurrency))
    return max(part_size, -(-per_request // _SEND_SLICE) * _SEND_SLICE)


def plan_parts(buffers: Sequence[memoryview], part_size: int) -> list[list[memoryview]]:
    """Cut ``buffers`` into parts of ``part_size`` bytes (the last may be shorter), slicing across them."""
    parts: list[list[memoryview]] = []
    current: list[memoryview] = []
    room = part_size
    for buffer in buffers:
        view = buffer
        while view.nbytes:
            piece = view[:room]
            current.append(piece)
            room -= piece.nbytes
            view = view[piece.nbytes :]
            if room == 0:
                parts.append(current)
                current, room = [], part_size
    if current:
        parts.append(current)
    return parts


async def _bounded(calls: Sequence[Callable[[], Awaitable[Any]]], concurrency: int) -> list[Any]:
    """Run ``calls`` at most ``concurrency`` at a time; the first failure cancels the rest."""
    semaphore = asyncio.Semaphore(concurrency)

    async def run(call: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await call()

    tasks = [asyncio.ensure_future(run(call)) for call in calls]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# -- S3 --------------------------------------------------------------------------------------


async def s3_upload(fs: Any, bucket: str, key: str, parts: Sequence[Sequence[memoryview]],
                    concurrency: int) -> None:
    """A multipart upload of ``parts`` (each >= 5 MiB but the last), completed only if all arrive."""
    upload = await fs._call_s3("create_multipart_upload", Bucket=bucket, Key=key)
    upload_id = upload["UploadId"]

    def sender(number: int, views: Sequence[memoryview]) -> Callable[[], Awaitable[dict[str, Any]]]:
        async def send() -> dict[str, Any]:
            answer = await fs._call_s3("upload_part", Bucket=bucket, Key=key, UploadId=upload_id,
                                       PartNumber=number, Body=PartBody(views))
            return {"PartNumber": number, "ETag": answer["ETag"]}
        return send

    try:
        done = await _bounded([sender(number, views) for number, views in enumerate(parts, 1)], concurrency)
        await fs._call_s3("complete_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id,
                          MultipartUpload={"Parts": done})
    except BaseException:
        # Shielded: a cancelled upload still frees its parts.
        await asyncio.shield(fs._call_s3("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload_id))
        raise
    finally:
        fs.invalidate_cache(f"{bucket}/{key}")


async def s3_put(fs: Any, bucket: str, key: str, views: Sequence[memoryview]) -> None:
    """One PUT of ``views``, read in place."""
    try:
        await fs._call_s3("put_object", Bucket=bucket, Key=key, Body=PartBody(views))
    finally:
        fs.invalidate_cache(f"{bucket}/{key}")


def _s3_pin(answer: dict[str, Any]) -> dict[str, str]:
    pin = {"IfMatch": answer["ETag"]}
    if answer.get("VersionId") not in (None, "", "null"):
        pin["VersionId"] = answer["VersionId"]
    return pin


async def s3_head(fs: Any, bucket: str, key: str, size: int) -> bytes:
    """The first ``size`` bytes; an :class:`ObjectHead` when the object is longer."""
    answer = await fs._call_s3("get_object", Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")
    body = answer["Body"]
    try:
        data: bytes = await body.read()
    finally:
        body.close()
    total = _total_size(answer.get("ContentRange"))
    if total is None or total <= len(data) or "ETag" not in answer:
        return data
    return ObjectHead(data, total, _s3_pin(answer))


async def _fill(body: Any, view: memoryview) -> int:
    """Copy a response body (botocore's or aiohttp's stream) into ``view`` as it arrives."""
    filled = 0
    try:
        while filled < view.nbytes:
            chunk = await body.read(min(view.nbytes - filled, 1 << 20))
            if not chunk:
                break
            view[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
    finally:
        close = getattr(body, "close", None)  # aiohttp's stream closes with its response
        if close is not None:
            close()
    return filled


def _ranges(size: int, part_size: int) -> list[tuple[int, int]]:
    return [(start, min(start + part_size, size)) for start in range(0, size, part_size)]


async def s3_read_into(fs: Any, bucket: str, key: str, head: ObjectHead, view: memoryview,
                       part_size: int, concurrency: int) -> None:
    """Fill ``view`` with the object's bytes after ``head``, by ranged GETs pinned to its version."""
    offset = len(head)

    def getter(start: int, stop: int) -> Callable[[], Awaitable[None]]:
        async def get() -> None:
            try:
                answer = await fs._call_s3("get_object", Bucket=bucket, Key=key,
                                           Range=f"bytes={offset + start}-{offset + stop - 1}", **head.version)
            except FileNotFoundError:
                raise ObjectChanged(f"{bucket}/{key} was deleted while it was read") from None
            except OSError as exc:
                if "pre-condition" in str(exc).lower() or "PreconditionFailed" in str(exc):
                    raise ObjectChanged(f"{bucket}/{key} was replaced while it was read") from exc
                raise
            if answer.get("ETag") != head.version["IfMatch"]:  # a server that ignores If-Match
                answer["Body"].close()
                raise ObjectChanged(f"{bucket}/{key} was replaced while it was read")
            received = await _fill(answer["Body"], view[start:stop])
            if received != stop - start:
                raise ObjectChanged(f"{bucket}/{key}: a ranged read returned {received} of {stop - start} bytes")
        return get

    size = wave_size(view.nbytes, part_size, concurrency)
    await _bounded([getter(start, stop) for start, stop in _ranges(view.nbytes, size)], concurrency)


# -- GCS -------------------------------------------------------------------------------------


#: GCS composes at most this many objects in one request.
GCS_MAX_COMPOSE = 32
# Buffers smaller than this are joined with their neighbours into one GCS part.
_SMALL = 1 << 20


def plan_compose_parts(buffers: Sequence[memoryview], part_size: int) -> list[Buffer]:
    """GCS parts that never cross a big buffer: slices of each buffer of at most ``part_size``,
    runs of small buffers (the header, pickle's frames) joined into one part."""
    parts: list[Buffer] = []
    small: list[memoryview] = []
    for view in buffers:
        if view.nbytes < _SMALL:
            small.append(view)
            continue
        if any(small):
            parts.append(b"".join(small))
        small = []
        parts.extend(view[start : start + part_size] for start in range(0, view.nbytes, part_size))
    if any(small):
        parts.append(b"".join(small))
    return parts


async def gcs_upload(fs: Any, path: str, parts: Sequence[Buffer], temp_folder: str, concurrency: int) -> None:
    """Upload ``parts`` in parallel as objects in ``temp_folder``, compose them into ``path``
    at once (readers see the whole object or nothing), then delete the parts."""
    from gcsfs.core import initiate_upload

    bucket, _, _ = path.partition("/")
    names = [f"{temp_folder}/{number:05d}" for number in range(len(parts))]

    def sender(name: str, data: Buffer) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            location = await initiate_upload(fs, bucket, name.partition("/")[2])
            size = memoryview(data).nbytes
            # The whole part in one request of its resumable session, sent in slices from
            # the buffer (gcsfs seeks the body back to 0 before each try).
            await fs._call("PUT", location, data=PartBody([memoryview(data)]), headers={
                "Content-Range": f"bytes 0-{size - 1}/{size}", "Content-Length": str(size),
                "Content-Type": "application/octet-stream"})
        return send

    try:
        await _bounded([sender(name, data) for name, data in zip(names, parts, strict=True)], concurrency)
        await fs._merge(path, names)
    finally:
        # Shielded: an interrupted write still deletes its parts (``gc`` sweeps what a
        # killed writer left: see FsspecStorage.incomplete_uploads).
        await asyncio.shield(asyncio.gather(*(fs._rm_file(name) for name in names), return_exceptions=True))
        fs.invalidate_cache(path)


async def gcs_head(fs: Any, path: str, size: int) -> bytes:
    """The first ``size`` bytes; an :class:`ObjectHead` (pinned to the generation) when the object is longer."""
    headers, data = await fs._call("GET", fs.url(path), headers={"Range": f"bytes=0-{size - 1}"})
    total = _total_size(headers.get("Content-Range"))
    generation = headers.get("x-goog-generation")
    if total is None or total <= len(data) or not generation:
        return bytes(data)
    return ObjectHead(data, total, {"generation": generation})


async def gcs_read_into(fs: Any, path: str, head: ObjectHead, view: memoryview, part_size: int,
                        concurrency: int) -> None:
    """Fill ``view`` with the object's bytes after ``head``, by ranged GETs of its generation."""
    from gcsfs.retry import validate_response

    offset = len(head)
    generation = head.version["generation"]
    url = fs.url(path)

    def getter(start: int, stop: int) -> Callable[[], Awaitable[None]]:
        async def get() -> None:
            # gcsfs's own streamed GET (as its get_file does), so each range lands in the
            # caller's memory as it arrives instead of being held whole first.
            await fs._set_session()
            headers = fs._get_headers({"Range": f"bytes={offset + start}-{offset + stop - 1}"})
            async with fs.session.get(url=url, params=fs._get_params({"generation": generation}),
                                      headers=headers, timeout=fs.requests_timeout) as answer:
                if answer.status == 404:  # that generation is gone: replaced or deleted
                    raise ObjectChanged(f"{path} was replaced while it was read")
                if answer.status >= 400:
                    validate_response(answer.status, await answer.read(), path)
                if answer.headers.get("x-goog-generation", generation) != generation:
                    raise ObjectChanged(f"{path} was replaced while it was read")
                received = await _fill(answer.content, view[start:stop])
            if received != stop - start:
                raise ObjectChanged(f"{path}: a ranged read returned {received} of {stop - start} bytes")
        return get

    size = wave_size(view.nbytes, part_size, concurrency)
    await _bounded([getter(start, stop) for start, stop in _ranges(view.nbytes, size)], concurrency)
