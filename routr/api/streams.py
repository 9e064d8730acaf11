"""``?watch=true``: newline-delimited JSON, ``{"type": "ADDED|MODIFIED|DELETED", "object"}``.

A watch subscribes, then sends the current items as ADDED, then follows changes. Sources are
callbacks (the event bus, the location store, the data provider); each stream has its own
bounded queue, so a slow client never holds up SIP. A client too slow to keep up gets an
``ERROR`` line and the end of the stream (it may watch again), never a silent gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from fastapi.responses import StreamingResponse

T = TypeVar("T")
Item = dict[str, Any]
#: Given the stream's callback, start feeding it; return how to stop.
Source = Callable[[Callable[[T], None]], Callable[[], None]]

NDJSON = "application/x-ndjson"
QUEUE_SIZE = 10_000
KEEPALIVE_SECONDS = 15.0  # a blank line this often, so idle proxies keep the stream
_FELL_BEHIND = object()


def line(type_: str, obj: Any) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


Initial = Callable[[], Awaitable[Iterable[Item]]]


async def _follow(
    source: Source[T],
    translate: Callable[[T], tuple[str, Any] | None],
    initial: Initial,
    stopping: asyncio.Event,
) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_SIZE + 1)

    def offer(event: T) -> None:
        if queue.full():
            return
        queue.put_nowait(event if queue.qsize() < QUEUE_SIZE else _FELL_BEHIND)

    stop = source(offer)  # first: a change while the list is read is not lost
    try:
        for item in await initial():
            yield line("ADDED", item)
        while not stopping.is_set():
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield b"\n"
                continue
            if event is _FELL_BEHIND:
                yield line("ERROR", {"reason": "the client fell behind; watch again"})
                return
            out = translate(event)
            if out is not None:
                yield line(*out)
    finally:
        stop()


async def _until(stopping: asyncio.Event, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """End ``body`` as soon as the server stops, even while it waits; a client that goes
    away (this generator cancelled) ends it too."""
    stop = asyncio.ensure_future(stopping.wait())
    step: asyncio.Future[bytes] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(body))
            done, _ = await asyncio.wait({step, stop}, return_when=asyncio.FIRST_COMPLETED)
            if step not in done:
                return
            try:
                item = step.result()
            except StopAsyncIteration:
                return
            step = None
            yield item
    finally:
        stop.cancel()
        if step is not None and not step.done():
            step.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await step
        await body.aclose()  # type: ignore[attr-defined]


def watch(
    source: Source[T],
    translate: Callable[[T], tuple[str, Any] | None],
    initial: Initial,
    stopping: asyncio.Event,
) -> StreamingResponse:
    """The streaming answer of a ``?watch=true`` request: ``initial()`` (the current
    items) is read once the stream follows ``source``; an item may then come twice, as
    ADDED and as its change, but none is missed."""
    body = _follow(source, translate, initial, stopping)
    return StreamingResponse(_until(stopping, body), media_type=NDJSON)


def stream(body: AsyncIterator[bytes], stopping: asyncio.Event) -> StreamingResponse:
    return StreamingResponse(_until(stopping, body), media_type=NDJSON)
