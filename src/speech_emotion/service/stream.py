"""``WS /v1/stream``: one live session per connection, fed to its own streaming engine.

Protocol (see docs/service.md): the server greets with ``ready``; the client may send one JSON
``config`` message before any audio (``sample_rate``, ``format`` ``pcm16``/``float32``, ``live``), then binary
frames of mono little-endian samples; the server pushes the engine's ``update`` (with the update hop in force,
``hop_s``) and ``segment`` events as JSON as they come; the engine steps of all streams run on the
:class:`~speech_emotion.service.scheduler.LiveScheduler`. ``{"type": "end"}`` flushes the engine and ends the
stream with a summary accounting for every sample received (processed or dropped). Audio that arrives faster than
the recognizer keeps up with is held back by TCP (the server stops reading past ``max_backlog_s``),
or, for ``live`` clients that prefer fresh results, dropped and reported in ``warning`` events. Errors are sent as
``{"type": "error", "error": CODE, "message": ...}`` followed by a close with :data:`CLOSE_CODES`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from starlette.websockets import WebSocket, WebSocketState

from ..calibration import Calibration
from ..decode import MAX_SAMPLE_RATE as MAX_RATE
from ..decode import MIN_SAMPLE_RATE as MIN_RATE
from ..report import VERDICT_KEYS, summarize
from ..streaming import SegmentEvent, StreamEnd
from ..timeline import Timeline
from .options import ServiceOptions
from .scheduler import LiveScheduler

log = logging.getLogger(__name__)

CLOSE_CODES: dict[str, int] = {
    "unauthorized": 1008,
    "forbidden_origin": 1008,
    "forbidden_host": 1008,
    "config_after_audio": 1008,
    "config_repeated": 1008,
    "unknown_parameter": 1008,
    "duplicate_parameter": 1008,
    "unsupported_format": 1003,
    "unknown_message": 1003,
    "malformed_frame": 1007,
    "malformed_message": 1007,
    "frame_too_large": 1009,
    "too_many_streams": 1013,
    "internal_error": 1011,
    "idle_timeout": 4408,
    "stream_too_long": 4413,
}
"""WebSocket close code sent after each error (RFC 6455 codes; 4xxx mirror HTTP 408/413)."""

STEP_S = 1.0
"""Most audio of one stream in one scheduler step, seconds."""

FORMATS: dict[str, np.dtype] = {"pcm16": np.dtype("<i2"), "float32": np.dtype("<f4")}


class StreamEngine(Protocol):
    """What a session needs from the streaming recognizer."""

    def feed(self, chunk: np.ndarray, sample_rate: int) -> Iterable[Any]: ...

    def flush(self) -> Iterable[Any]: ...


EngineFactory = Callable[[], StreamEngine]


CONFIG_FIELDS = frozenset({"type", "sample_rate", "format", "channels", "live"})
"""The fields a ``config`` message may carry; any other is refused."""


class StreamError(Exception):
    """Ends a session: sent to the client as an error event, then the close code of ``error``."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message

    @property
    def close_code(self) -> int:
        return CLOSE_CODES[self.error]


@dataclass
class StreamFormat:
    """How the client's binary frames are encoded."""

    sample_rate: int = 16000
    format: str = "pcm16"

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> StreamFormat:
        unknown = sorted(str(key) for key in message if key not in CONFIG_FIELDS)
        if unknown:  # a misspelt "samplerate" would otherwise stream 48 kHz audio read as 16 kHz, silently wrong
            raise StreamError(
                "unsupported_format",
                f"unknown config field {unknown[0]!r} (known: {', '.join(sorted(CONFIG_FIELDS - {'type'}))})",
            )
        rate = message.get("sample_rate", 16000)
        fmt = message.get("format", "pcm16")
        if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
            raise StreamError("unsupported_format", f"sample_rate must be an integer {MIN_RATE}..{MAX_RATE}")
        if fmt not in FORMATS:
            raise StreamError("unsupported_format", f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        channels = message.get("channels", 1)
        if not isinstance(channels, int) or isinstance(channels, bool) or channels != 1:
            raise StreamError("unsupported_format", "only mono audio (channels: 1) is supported")
        return cls(rate, fmt)

    def decode(self, data: bytes) -> np.ndarray:
        """The samples of one binary frame as sent (int16 or float32, ``(frames,)``); the engine converts them as it
        converts every door's input (:func:`~speech_emotion.conditioning.as_float`: int16 scaled by full range,
        floats beyond full scale clipped, and noted at the end). :class:`StreamError` if malformed."""
        dtype = FORMATS[self.format]
        if len(data) % dtype.itemsize:
            raise StreamError(
                "malformed_frame", f"{self.format} frame of {len(data)} bytes is not a whole number of samples"
            )
        samples = np.frombuffer(data, dtype=dtype).astype(dtype.newbyteorder("="))
        if self.format == "float32" and not np.all(np.isfinite(samples)):
            raise StreamError("malformed_frame", "float32 frame contains NaN or infinite samples")
        return samples


def parse_control(text: str) -> dict[str, Any]:
    """A text message as a JSON object; :class:`StreamError` ``malformed_message`` for anything else, including
    JSON the parser gives up on (nesting past the recursion limit, integers past the digit limit)."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError is a ValueError, as is the int digit limit
        message = None
    if not isinstance(message, dict):
        raise StreamError("malformed_message", "text messages must be JSON objects")
    return message


def event_dict(event: Any) -> dict[str, Any]:
    """An engine event as JSON-ready data."""
    return event.to_dict() if hasattr(event, "to_dict") else dict(event)


_END = object()


class StreamSession:
    """One WebSocket stream: a reader task decoding frames, a worker task handing them to the live scheduler."""

    def __init__(
        self,
        websocket: WebSocket,
        engine: StreamEngine,
        options: ServiceOptions,
        scheduler: LiveScheduler,
        hello: dict[str, Any],
        calibration: Calibration | None = None,
    ) -> None:
        """``hello``: the ``ready`` message (its ``model`` and ``labels`` name the stream's timeline);
        ``calibration``: the model's (:attr:`Recognizer.calibration`), whose thresholds say whether the stream's
        answer in the ``end`` message is uncertain."""
        self.ws = websocket
        self.engine = engine
        self.options = options
        self.scheduler = scheduler
        self.hello = hello
        self.format = StreamFormat()
        self.received = 0
        self.configured = False
        """Samples received, at the client's rate."""
        self.processed = 0
        self.dropped = 0
        self.events = 0
        self.end: StreamEnd | None = None
        """What the engine says at the end of the stream (notes, speech found)."""
        self.calibration = calibration
        self.segments: list[SegmentEvent] = []
        """The segment events sent, for the ``end`` message's summary (a few per minute of speech)."""
        self._pending = 0
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._send_lock = asyncio.Lock()
        self._finished = False
        """Set with the last message (``end`` or ``error``): the engine's task may still be running, and nothing
        it sends may follow that message."""
        self._last_drop_notice = 0.0
        self._dropped_noticed = 0
        """Dropped samples the last ``audio_dropped`` warning counted (the warnings are at most one a second)."""
        self._last_status: tuple[bool, float] | None = None
        self.live = False
        """Live mode drops audio the server is too far behind on (reported); otherwise reading pauses."""
        self._drained = asyncio.Event()
        self._drained.set()

    async def run(self) -> None:
        """Serve the stream until the client ends it, leaves, or breaks a rule."""
        await self.send({"type": "ready", **self.hello})
        reader = asyncio.create_task(self._read())
        worker = asyncio.create_task(self._work())
        try:
            done, _ = await asyncio.wait({reader, worker}, return_when=asyncio.FIRST_COMPLETED)
            if worker in done:  # only ends early when the engine failed
                worker.result()
                raise RuntimeError("stream worker stopped before the end of the stream")
            if reader.result() == "end":
                await worker
                await self.finish({"type": "end", **self.summary()}, 1000)
        except StreamError as exc:
            await self.fail(exc)
        except Exception:
            log.exception("stream failed")
            await self.fail(StreamError("internal_error", "the recognizer failed on this stream"))
        finally:
            for task in (reader, worker):
                task.cancel()
            await asyncio.gather(reader, worker, return_exceptions=True)

    def summary(self) -> dict[str, Any]:
        """Accounting: ``received == processed + dropped + unprocessed``; ``unprocessed`` is 0 after a normal
        end and counts the audio still queued when a stream is closed for an error."""
        rate = self.format.sample_rate
        return {
            "sample_rate": rate,
            "received_samples": self.received,
            "processed_samples": self.processed,
            "dropped_samples": self.dropped,
            "unprocessed_samples": self.received - self.processed - self.dropped,
            "received_s": round(self.received / rate, 3),
            "dropped_s": round(self.dropped / rate, 3),
            "events": self.events,
            **(
                {
                    "speech_s": round(self.end.speech_s, 3),
                    "segments": self.end.segments,
                    "notes": list(self.end.notes),
                    **self._verdict(),
                }
                if self.end is not None
                else {}
            ),
        }

    def _verdict(self) -> dict[str, Any]:
        """The stream's ``dominant``, ``probabilities``, ``verdict``, ``uncertain`` and ``uncertain_share``: those of
        :func:`~speech_emotion.report.summarize` over the segments sent, as ``stream`` and ``listen`` print them."""
        labels = tuple(self.hello.get("labels", ()))
        if not labels:
            return {}
        timeline = Timeline(
            "<stream>",
            self.received / self.format.sample_rate,
            self.format.sample_rate,
            str(self.hello.get("model", "")),
            labels,
            segments=self.segments,
            calibration=self.calibration,
        )
        summary = summarize(timeline)
        return {key: summary[key] for key in VERDICT_KEYS}

    async def _read(self) -> str:
        """Receive messages until ``end`` (returns ``"end"``) or disconnect (``"gone"``)."""
        idle = self.options.idle_timeout_s
        loop = asyncio.get_running_loop()
        last_audio = loop.time()
        while True:
            paused = loop.time()
            await self._drained.wait()  # backpressure: a client sending faster than we process waits in TCP
            last_audio += loop.time() - paused  # time the server held the client back is not idle time
            # only audio counts as activity: control messages do not keep a slot alive
            wait = last_audio + idle - loop.time()
            try:
                if wait <= 0:
                    raise asyncio.TimeoutError
                message = await asyncio.wait_for(self.ws.receive(), timeout=wait)
            except asyncio.TimeoutError:
                raise StreamError("idle_timeout", f"no audio for {idle:g} s") from None
            if message["type"] == "websocket.disconnect":
                return "gone"
            data, text = message.get("bytes"), message.get("text")
            size = len(data) if data is not None else len((text or "").encode())
            if size > self.options.max_frame_bytes:
                raise StreamError(
                    "frame_too_large", f"message of {size} bytes, the limit is {self.options.max_frame_bytes}"
                )
            if data is not None:
                self._on_audio(data)
                if data:  # an empty frame carries no audio: it does not keep an idle stream's slot
                    last_audio = loop.time()
            elif text is not None and self._on_text(text):
                self._notice_drops()
                await self._queue.put(_END)
                return "end"

    def _on_text(self, text: str) -> bool:
        """Handle a JSON control message; ``True`` when it ends the stream."""
        message = parse_control(text)
        kind = message.get("type")
        if kind in ("config", "start"):
            if self.received:
                raise StreamError("config_after_audio", "the config message must come before any audio")
            if self.configured:
                raise StreamError("config_repeated", "one config message per stream; this one is the second")
            self.configured = True
            self.format = StreamFormat.from_message(message)
            live = message.get("live", False)
            if not isinstance(live, bool):
                raise StreamError("unsupported_format", "live must be true or false")
            self.live = live
            self._queue.put_nowait(
                {
                    "type": "config",
                    "sample_rate": self.format.sample_rate,
                    "format": self.format.format,
                    "live": self.live,
                }
            )
            return False
        if kind == "end":
            return True
        raise StreamError("unknown_message", f"unknown message type {kind!r} (expected config or end)")

    def _on_audio(self, data: bytes) -> None:
        samples = self.format.decode(data)
        rate = self.format.sample_rate
        self.received += samples.size
        if self.received > self.options.max_stream_s * rate:
            raise StreamError("stream_too_long", f"streams are limited to {self.options.max_stream_s:g} s of audio")
        backlog = self.options.max_backlog_s * rate
        dropping = self.live and self._pending + samples.size > backlog
        if dropping:
            self.dropped += samples.size
        if time.monotonic() - self._last_drop_notice >= 1.0:  # at most one warning a second, and the end's
            self._notice_drops()
        if dropping:
            return
        self._pending += samples.size
        if self._pending > backlog:
            self._drained.clear()
        self._queue.put_nowait(samples)

    def _notice_drops(self) -> None:
        """Queue an ``audio_dropped`` warning with the stream's total dropped so far, if it grew since the last one
        (called at most once a second while audio comes, and at the end: the warnings' last ``dropped_s`` is the
        ``end`` message's)."""
        if self.dropped == self._dropped_noticed:
            return
        self._last_drop_notice, self._dropped_noticed = time.monotonic(), self.dropped
        self._queue.put_nowait(
            {
                "type": "warning",
                "warning": "audio_dropped",
                "message": "the server is behind: audio was dropped",
                "dropped_s": round(self.dropped / self.format.sample_rate, 3),
            }
        )

    async def _work(self) -> None:
        """Feed queued audio to the engine through the scheduler, joining whatever has piled up."""
        while True:
            item = await self._queue.get()
            chunks: list[np.ndarray] = []
            ending = False
            while True:
                if item is _END:
                    ending = True
                elif isinstance(item, dict):
                    if chunks:  # keep notices in order with the audio around them
                        await self._feed(chunks)
                        chunks = []
                    await self.send(item)
                else:
                    chunks.append(item)
                if ending or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if chunks:
                await self._feed(chunks)
            if ending:
                events = await self.scheduler.close(self.engine)
                if events and isinstance(events[-1], StreamEnd):
                    self.end = events.pop()
                await self._send_events(events)
                return

    async def _feed(self, chunks: list[np.ndarray]) -> None:
        """Hand the queued audio to the scheduler, at most :data:`STEP_S` seconds per step, so a stream with a
        backlog (a file sent at full speed) takes its turns with the others instead of one long step."""
        audio = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        rate = self.format.sample_rate
        step = max(1, int(STEP_S * rate))
        for start in range(0, len(audio), step):
            piece = audio[start : start + step]
            events = await self.scheduler.feed(self.engine, piece, rate)
            self._pending -= piece.size
            self.processed += piece.size
            if self._pending <= self.options.max_backlog_s * rate:
                self._drained.set()
            await self._send_events(events)
            status = self._status()
            if status is not None:
                await self.send(status)

    def _status(self) -> dict[str, Any] | None:
        """Speech/silence state and stream time, on each change and every quarter second of audio."""
        speech, now = getattr(self.engine, "in_speech", None), getattr(self.engine, "time", None)
        if speech is None or now is None:
            return None
        if self._last_status is not None and self._last_status[0] == speech and now - self._last_status[1] < 0.25:
            return None
        self._last_status = (bool(speech), float(now))
        voiced = bool(getattr(self.engine, "frame_voiced", speech))
        return {"type": "status", "time": round(float(now), 3), "speech": bool(speech), "voiced": voiced}

    async def _send_events(self, events: list[Any]) -> None:
        hop_s = self.scheduler.hop_s(self.engine)
        for event in events:
            self.events += 1
            if isinstance(event, SegmentEvent):
                self.segments.append(event)
            payload = event_dict(event)
            if payload.get("type") == "update" and hop_s is not None:
                payload["hop_s"] = round(hop_s, 3)
            await self.send(payload)

    async def send(self, payload: dict[str, Any]) -> None:
        """Send one JSON message; a client that has gone, or a stream already finished, is ignored."""
        async with self._send_lock:
            if not self._finished:
                await self._send_now(payload)

    async def _send_now(self, payload: dict[str, Any]) -> None:
        if self.ws.application_state != WebSocketState.CONNECTED:
            return
        with contextlib.suppress(Exception):
            await self.ws.send_text(json.dumps(payload, separators=(",", ":")))

    async def fail(self, exc: StreamError) -> None:
        await self.finish(
            {"type": "error", "error": exc.error, "message": exc.message, **self.summary()}, exc.close_code, exc.error
        )

    async def finish(self, payload: dict[str, Any], code: int, reason: str = "") -> None:
        """Send the last message and close, with nothing in between (a status the engine's task sends after an
        error reached a client under load, in a fresh clone's CI run)."""
        async with self._send_lock:
            if self._finished:
                return
            self._finished = True
            await self._send_now(payload)
            if self.ws.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    await self.ws.close(code, reason)


async def refuse(websocket: WebSocket, error: str, message: str, subprotocol: str | None = None) -> None:
    """Accept only to tell the client why, then close with the error's code (browsers see no reason otherwise)."""
    await websocket.accept(subprotocol=subprotocol)
    with contextlib.suppress(Exception):
        await websocket.send_text(json.dumps({"type": "error", "error": error, "message": message}))
        await websocket.close(CLOSE_CODES[error], error)
