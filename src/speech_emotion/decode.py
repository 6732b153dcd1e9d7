"""Decoding: any audio file, bytes or binary file object to float32 ``(frames, channels)`` blocks at its own rate.

:func:`open_blocks` is the one way in. libsndfile reads what it can (WAV, FLAC, OGG Vorbis/Opus, AIFF, CAF, ...);
FFmpeg, through PyAV, reads MPEG audio, M4A/AAC, the audio of MP4/MOV/3GP video, WebM/Matroska, AMR and WMA.
Every door (predict, stream, analyze, batch, the service) and training read through it, so a codec one decodes,
all decode. Turning the blocks into model input is :mod:`speech_emotion.conditioning`'s job.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
import soundfile as sf

from .errors import AudioError

AudioSource = Union[str, Path, bytes, BinaryIO]

AUDIO_SUFFIXES = (
    *(".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".caf"),
    *(".m4a", ".aac", ".mp4", ".m4v", ".mov", ".3gp", ".webm", ".mka", ".mkv", ".amr", ".wma"),
)
"""File name endings of audio (and of video whose audio track is read) that :func:`open_blocks` decodes."""

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8000, 192000
"""The one sample-rate policy, for files, uploads, the engine and WebSocket streams: from narrowband telephone audio
(below 8 kHz the speech band the 16 kHz model hears is mostly missing) to the highest rate recorders offer (above,
only decoding and resampling cost). A file whose header says otherwise is refused before decoding."""

MAX_DECODED_SAMPLES = 600 * 48000 * 2
"""The service's default decode budget for :func:`open_blocks`: ``channels x frames`` of 600 s of 48 kHz stereo
(57.6 M samples). It bounds the work one upload may ask for, whatever its compressed size."""

MAX_BLOCK_SAMPLES = 1 << 20
"""Most samples (over all channels) in one decoded block, so a block's memory is bounded whatever the rate and
channel count (4 MiB of float32)."""


def _describe(source: AudioSource, name: str | None = None) -> str:
    """The name messages give ``source``: ``name`` if given, a path as given, a file object's own file name,
    else ``<audio>`` (never a repr of the object)."""
    if name is not None:
        return name
    if isinstance(source, (str, Path)):
        return str(source)
    own = getattr(source, "name", None)  # an open file's path; a temporary file's may be an int descriptor
    return own if isinstance(own, str) and own else "<audio>"


class _Undecodable(Exception):
    """A decoder's failure, reduced to one of the plain reasons (see :func:`_decode_reason`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


UNRECOGNISED = ("not recognised", "not recognized", "not a regular file")
"""libsndfile's words for data it cannot identify ("not a regular file": e.g. non-audio named .mp3)."""
UNSUPPORTED = ("unsupported", "not supported", "unimplemented", "unknown codec", "unknown format", "doesn't support")
"""... and for a container it knows holding an encoding it cannot decode."""
NOT_RECOGNISED = "format not recognised"
UNSUPPORTED_ENCODING = "unsupported encoding"
CORRUPT = "corrupt or truncated data"


def _decode_reason(exc: Exception) -> str:
    """The plain reason for a libsndfile failure: ``format not recognised``, ``unsupported encoding`` or ``corrupt
    or truncated data``. libsndfile's own text is never passed on: it names the Python object it was handed
    (``<_io.BytesIO object at 0x...>``), the path again, and decoder internals."""
    text = str(exc).lower()
    if isinstance(exc, TypeError):  # not something libsndfile can read from at all
        return "not a path, bytes or binary file"
    if any(words in text for words in UNRECOGNISED):
        return NOT_RECOGNISED
    if any(words in text for words in UNSUPPORTED):
        return UNSUPPORTED_ENCODING
    return CORRUPT


_SHORT_DATA_CHUNK = re.compile(r"^\s*(?:data|SSND) : (\d+) \(should be (\d+)\)", re.MULTILINE)
"""libsndfile's log line for a WAV/AIFF data chunk whose header claims more bytes than the file holds."""

UNKNOWN_LENGTH = 0x7FFF0000
"""Data chunk sizes from here up (0x7FFFFFFF, 0xFFFFFFFF) are what streaming writers put when the length is not
known yet: not a promise the file broke."""


def announced_frames(handle: sf.SoundFile) -> int:
    """Frames the header of ``handle`` announces. libsndfile reads a WAV or AIFF cut short (a download or copy
    that stopped) up to its end without a word, reporting only the frames present; its log still has the size the
    header claimed, from which the announced length is worked out."""
    frames = max(handle.frames, 0)
    try:
        log = handle.extra_info
    except Exception:  # noqa: BLE001 - no log: trust the frame count
        return frames
    short = _SHORT_DATA_CHUNK.search(log)
    if short is not None and frames > 0:
        claimed, held = int(short[1]), int(short[2])
        if 0 < held < claimed < UNKNOWN_LENGTH:
            return max(frames, round(frames * claimed / held))
    return frames


FRAMING_SLACK_S = 0.1
"""A source that ends less than this short of its announced length is complete: lossy codecs' priming and padding
(an Opus pre-skip, a last AAC or MP3 frame) move the end by a few tens of milliseconds, not a cut."""


def ended_early(frames_read: int, announced_s: float, sample_rate: int) -> str | None:
    """The note for a source that ended before its header said it would (``None`` if it did not): the one
    wording ``predict``, ``analyze``, ``stream``, ``batch`` and the service report."""
    if announced_s and frames_read < (announced_s - FRAMING_SLACK_S) * sample_rate:
        return f"file ended early: {frames_read / sample_rate:.1f} s of the announced {announced_s:.1f} s were read"
    return None


READ_PIECE = 1024
"""Frames libsndfile decodes per call, on a fixed grid whatever block size the caller reads: a decoding error loses
at most this much of the audio before it, the same for every door (``stream`` reads 100 ms, ``predict`` 10 s)."""


class _SoundFileReader:
    """libsndfile's reader (WAV, FLAC, OGG Vorbis/Opus, AIFF, CAF, ...): float32 ``(frames, channels)`` blocks
    (float64 for double-precision files, whose values float32 may not hold).

    ``stream`` (the bytes libsndfile reads, when they are ours: closed with the reader) and its length ``size`` tell
    a file cut short from one damaged part way: a decoding error with every byte of the stream read (a FLAC whose
    copy stopped) ends the audio there, as a WAV or MP3 cut short ends (the announced length then gives the "file
    ended early" note); an error before the last byte is damage, which stops the reading."""

    def __init__(self, handle: sf.SoundFile, stream: BinaryIO | None = None, size: int | None = None) -> None:
        self._handle = handle
        self._stream = stream
        self._size = size
        self._ended = False
        self._held: list[np.ndarray] = []
        """Frames decoded past the last block returned (pieces are on a fixed grid)."""
        self._dtype = "float64" if handle.subtype == "DOUBLE" else "float32"  # a finite double stays finite
        self.sample_rate: int = handle.samplerate
        self.channels: int = handle.channels
        self.frames: int = announced_frames(handle)
        """Announced length in frames (more than the file holds when it was cut short)."""

    def read(self, frames: int) -> np.ndarray:
        pieces, got = self._held, sum(len(p) for p in self._held)
        while got < frames and not self._ended:
            try:
                piece = self._handle.read(READ_PIECE, dtype=self._dtype, always_2d=True)
            except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
                if self._stream is None or self._size is None or self._stream.tell() < self._size:
                    raise _Undecodable(_decode_reason(exc)) from None
                self._ended = True  # cut short: the audio ends here
                break
            if len(piece) == 0:
                self._ended = True
                break
            pieces.append(piece)
            got += len(piece)
        data = np.concatenate(pieces) if len(pieces) > 1 else (pieces or [_empty(self.channels)])[0]
        self._held = [data[frames:]] if len(data) > frames else []
        return data[:frames]

    def close(self) -> None:
        self._handle.close()
        if self._stream is not None:
            self._stream.close()


AV_FORMATS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,mp3,aac,ogg,wav,flac,aiff,caf,amr,amrnb,amrwb,asf,w64"
"""The only containers FFmpeg may open (its ``format_whitelist``): audio and the video containers phones and
browsers record in. Playlists, network and concatenating demuxers, which open further files, are never tried."""

AV_CODECS = frozenset(
    {"aac", "aac_fixed", "aac_latm", "opus", "libopus", "vorbis", "mp3", "mp3float", "mp2", "mp2float"}
    | {"mp1", "mp1float", "flac", "alac", "amrnb", "amrwb", "wmav1", "wmav2", "wmapro", "wmalossless"}
)
"""Decoders PyAV may run, besides ``pcm_*``; another codec is an ``unsupported encoding``."""

MAX_BAD_PACKETS = 8
"""Consecutive packets a lossy decoder may reject (skipped, as FFmpeg's own tools do) before the data counts as
corrupt."""


def _av() -> Any:
    """PyAV, imported on first use (most inputs never need it), with FFmpeg's own log off: its text never reaches
    the user's terminal or a worker's log."""
    import av
    import av.logging

    av.logging.set_level(None)
    return av


class _AvReader:
    """FFmpeg's reader through PyAV (M4A/AAC, MP4/MOV audio tracks, WebM/Matroska, MP3, ...): the first decoded
    frame fixes the rate and channel count, so what :class:`AudioBlocks` announces is what it yields."""

    def __init__(self, container: Any, av: Any, own: BinaryIO | None = None) -> None:
        self._container = container
        self._av = av
        self._own = own
        stream = container.streams.best("audio")
        if stream is None:
            # FFmpeg guesses a raw stream from the file's name (random bytes named .flac: one audio stream of
            # 0 channels at 0 Hz): that is data it did not recognise, not a recording without an audio track
            guessed = any(not (a.channels and a.rate) for a in container.streams.audio)
            raise _Undecodable(NOT_RECOGNISED if guessed else "no audio track")
        codec = stream.codec_context  # None where FFmpeg has no decoder (a WAV header saying 0- or 48-bit PCM)
        if codec is None or not (codec.name in AV_CODECS or codec.name.startswith("pcm_")):
            raise _Undecodable(UNSUPPORTED_ENCODING)
        codec.thread_count = 1
        self._stream = stream
        self._frames = self._decoded()
        self._held: list[np.ndarray] = []
        self._held_frames = 0
        first = next(self._frames, None)
        if first is None:
            raise _Undecodable(CORRUPT)
        self.sample_rate, self.channels = first[1], first[0].shape[1]
        self._hold(first[0])
        seconds = float(stream.duration * stream.time_base) if stream.duration else 0.0
        if not seconds and container.duration:
            seconds = container.duration / 1e6  # AV_TIME_BASE
        self.frames: int = max(0, round(seconds * self.sample_rate))

    def _decoded(self) -> Generator[tuple[np.ndarray, int], None, None]:
        bad = 0
        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = self._stream.codec_context.decode(packet)
                except self._av.FFmpegError:
                    bad += 1
                    if bad > MAX_BAD_PACKETS:
                        raise _Undecodable(CORRUPT) from None
                    continue
                bad = 0
                for frame in frames:
                    yield _frame_samples(frame), frame.sample_rate
        except (self._av.FFmpegError, OSError, ValueError):
            raise _Undecodable(CORRUPT) from None

    def _hold(self, samples: np.ndarray) -> None:
        if samples.shape[1] != self.channels:
            raise _Undecodable(f"{UNSUPPORTED_ENCODING}: the channel count changes part way")
        self._held.append(samples)
        self._held_frames += len(samples)

    def read(self, frames: int) -> np.ndarray:
        for samples, rate in self._frames:
            if rate != self.sample_rate:
                raise _Undecodable(f"{UNSUPPORTED_ENCODING}: the sample rate changes part way")
            self._hold(samples)
            if self._held_frames >= frames:
                break
        data = np.concatenate(self._held) if len(self._held) > 1 else (self._held or [_empty(self.channels)])[0]
        out, rest = data[:frames], data[frames:]
        self._held, self._held_frames = ([rest] if len(rest) else []), len(rest)
        return out

    def close(self) -> None:
        self._frames.close()
        self._container.close()
        if self._own is not None:
            self._own.close()


def _empty(channels: int) -> np.ndarray:
    return np.zeros((0, channels), dtype=np.float32)


def _frame_samples(frame: Any) -> np.ndarray:
    """A decoded PyAV frame as ``(frames, channels)`` samples: float as is, integers scaled to [-1, 1)."""
    data = frame.to_ndarray()
    channels = frame.layout.nb_channels
    data = data.T if frame.format.is_planar else data.reshape(-1, channels)
    if data.dtype.kind in "iu":
        bits = data.dtype.itemsize * 8
        offset = 2.0 ** (bits - 1) if data.dtype.kind == "u" else 0.0
        data = (data.astype(np.float64) - offset) / 2.0 ** (bits - 1)
    return np.ascontiguousarray(data, dtype=np.float32)


MAGIC_HEAD = 64
"""Bytes read from the start of a source to tell its container."""


def _av_container(head: bytes) -> str | None:
    """The container FFmpeg is to read, told by its first bytes (``None``: one for libsndfile, or not audio).
    MPEG audio (MP3, with or without an ID3 tag) and ADTS AAC go to FFmpeg first: libsndfile's MP3 decoder,
    libmpg123, writes its complaints about valid files straight to the process's stderr."""
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "MPEG audio"
    if head[4:8] == b"ftyp" or head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "MP4/MOV"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    if head[:5] == b"#!AMR":
        return "AMR"
    if head[:16] == bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"):
        return "ASF/WMA"
    return None


def _head(source: str | bytes | BinaryIO) -> bytes:
    """The first :data:`MAGIC_HEAD` bytes of ``source`` (a file object is left where it was)."""
    if isinstance(source, bytes):
        return source[:MAGIC_HEAD]
    if isinstance(source, str):
        with open(source, "rb") as f:
            return f.read(MAGIC_HEAD)
    try:
        at = source.tell()
        head = source.read(MAGIC_HEAD)
        source.seek(at)
    except (OSError, AttributeError, ValueError):
        return b""
    return head if isinstance(head, bytes) else b""


def _open_av(source: str | bytes | BinaryIO, recognised: bool) -> _AvReader:
    """PyAV's reader for ``source`` (a path, bytes or a binary file at the start of the audio). Raises
    :class:`_Undecodable`: for data FFmpeg cannot open, ``corrupt or truncated data`` when its first bytes told a
    container (``recognised``), else ``format not recognised``."""
    av = _av()
    own = open(source, "rb") if isinstance(source, str) else None  # noqa: SIM115 - the reader closes it
    try:
        data = own or (io.BytesIO(source) if isinstance(source, bytes) else source)
        try:
            container = av.open(data, "r", options={"format_whitelist": AV_FORMATS})
        except (av.FFmpegError, OSError, ValueError, TypeError):
            raise _Undecodable(CORRUPT if recognised else NOT_RECOGNISED) from None
        try:
            return _AvReader(container, av, own)
        except BaseException:
            container.close()
            raise
    except BaseException:
        if own is not None:
            own.close()
        raise


def _open_reader(source: AudioSource, name: str) -> _SoundFileReader | _AvReader:
    """The reader for ``source``: libsndfile for what it reads, FFmpeg (PyAV) for the rest and for MPEG audio.

    Raises :class:`AudioError` with a one-line reason for a missing, empty, unreadable, corrupt or unsupported
    input, naming it ``name``.
    """
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            if str(source) == "-":
                raise AudioError(name, "no such file (standard input is not read: give the audio's file path)")
            raise AudioError(name, "no such file")
        if path.is_dir():
            raise AudioError(name, "is a directory, not an audio file")
        if not path.is_file():
            raise AudioError(name, "not a regular file (a device, pipe or socket): save the audio to a file first")
        if path.stat().st_size == 0:
            raise AudioError(name, "file is empty (0 bytes)")
        handle: str | bytes | BinaryIO = str(path)
    elif isinstance(source, bytes):
        if not source:
            raise AudioError(name, "file is empty (0 bytes)")
        handle = source
    else:
        handle = source
    start = _tell(handle)
    try:
        container = _av_container(_head(handle))
        if container is not None:
            return _open_av(handle, recognised=True)
        try:
            sound, stream, size = _sound_file(handle)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
            reason = _decode_reason(exc)
            if reason not in (NOT_RECOGNISED, UNSUPPORTED_ENCODING):
                raise _Undecodable(reason) from None
            _seek(handle, start)
            try:
                return _open_av(handle, recognised=False)
            except _Undecodable as av_exc:
                raise _Undecodable(reason if av_exc.reason == NOT_RECOGNISED else av_exc.reason) from None
        if sound.subtype.startswith("MPEG"):  # MPEG audio in another container: FFmpeg (see _av_container)
            sound.close()
            if stream is not None:
                stream.close()
            _seek(handle, start)
            return _open_av(handle, recognised=True)
        return _SoundFileReader(sound, stream, size)
    except PermissionError:
        raise AudioError(name, "permission denied") from None
    except _Undecodable as exc:
        raise AudioError(name, f"cannot decode audio ({exc.reason})") from None


def _sound_file(handle: str | bytes | BinaryIO) -> tuple[sf.SoundFile, BinaryIO | None, int | None]:
    """libsndfile's handle on a path, bytes or file object; the byte stream it reads when it is ours (for its
    position; closed with the handle) and that stream's length (``None`` for a caller's file object)."""
    if isinstance(handle, bytes):
        data = io.BytesIO(handle)
        return sf.SoundFile(data), data, len(handle)
    if not isinstance(handle, str):
        return sf.SoundFile(handle), None, None
    raw = open(handle, "rb")  # noqa: SIM115 - closed by the reader
    try:
        return sf.SoundFile(raw), raw, os.fstat(raw.fileno()).st_size
    except BaseException:
        raw.close()
        raise


def _tell(handle: str | bytes | BinaryIO) -> int:
    try:
        return handle.tell() if not isinstance(handle, (str, bytes)) else 0
    except (OSError, AttributeError, ValueError):
        return 0


def _seek(handle: str | bytes | BinaryIO, at: int) -> None:
    if not isinstance(handle, (str, bytes)):
        with contextlib.suppress(OSError, AttributeError, ValueError):
            handle.seek(at)


class AudioBlocks:
    """A decoded audio source read a block at a time: iterate for float32 ``(frames, channels)`` blocks.

    Every path (predict, stream, analyze, batch, the service) reads files, bytes and file objects
    through this class, so a codec one door decodes, all doors decode. Iterate once; iterating to the end (or
    :meth:`close`) closes the source.
    """

    def __init__(
        self,
        reader: _SoundFileReader | _AvReader,
        name: str,
        block_s: float,
        max_duration_s: float | None = None,
        max_decoded_samples: int | None = None,
    ) -> None:
        self._reader = reader
        self.name = name
        self.sample_rate: int = reader.sample_rate
        self.channels: int = reader.channels
        self.duration_s: float = reader.frames / self.sample_rate
        """Announced length (0 when the container does not say): what the header says, which is more than the
        file holds when it was cut short (see :func:`ended_early`)."""
        self._block = max(1, min(int(block_s * self.sample_rate), MAX_BLOCK_SAMPLES // max(1, self.channels)))
        self._max_frames = max_duration_s * self.sample_rate if max_duration_s is not None else None
        self._max_duration_s = max_duration_s
        self._budget = max_decoded_samples

    def over_budget(self, samples: int) -> AudioError:
        """The error for ``samples`` decoded samples over the budget."""
        return AudioError(
            self.name,
            f"too large to decode: {samples / 1e6:.1f} M samples ({self.sample_rate} Hz x {self.channels} "
            f"channels), the limit is {(self._budget or 0) / 1e6:.1f} M",
        )

    def close(self) -> None:
        """Release the source without decoding the rest."""
        self._reader.close()

    def __iter__(self) -> Iterator[np.ndarray]:
        done = 0
        try:
            while True:
                # the header's length was checked on opening; these catch a header that understates it
                if self._max_frames is not None and done > self._max_frames:
                    raise AudioError(self.name, f"too long: the limit is {self._max_duration_s:.0f} s")
                if self._budget is not None and done * self.channels > self._budget:
                    raise self.over_budget(done * self.channels)
                try:
                    block = self._reader.read(self._block)
                except _Undecodable as exc:
                    if done == 0:
                        raise AudioError(self.name, f"cannot decode audio ({exc.reason})") from None
                    raise AudioError(
                        self.name, f"decoding failed at {done / self.sample_rate:.1f} s ({exc.reason})"
                    ) from None
                if len(block) == 0:
                    return
                done += len(block)
                yield block
        finally:
            self._reader.close()


def open_blocks(
    source: AudioSource,
    block_s: float = 10.0,
    max_duration_s: float | None = None,
    max_decoded_samples: int | None = None,
    name: str | None = None,
) -> AudioBlocks:
    """Open ``source`` (path, bytes or binary file) for reading ``block_s`` seconds at a time.

    libsndfile reads what it can (WAV, FLAC, OGG Vorbis/Opus, AIFF, CAF, ...); FFmpeg, through PyAV, reads MP3,
    M4A/AAC, the audio track of MP4/MOV/3GP video, WebM/Matroska (Opus, Vorbis), AMR and WMA. Blocks hold at most
    :data:`MAX_BLOCK_SAMPLES` samples over all channels, so memory per reader is bounded whatever the header says.
    Before any decoding, the header is checked: a sample rate outside
    :data:`MIN_SAMPLE_RATE`..:data:`MAX_SAMPLE_RATE`, more than ``max_duration_s`` seconds, or more than
    ``max_decoded_samples`` samples (``channels x frames``, the decode budget; the service uses
    :data:`MAX_DECODED_SAMPLES`; ``None``: none) raise :class:`AudioError`; both limits are also kept while
    decoding, for headers that understate the length (or, as a browser's WebM, leave it out). Raises
    :class:`AudioError` for a missing, empty, unreadable, unsupported, over-long or over-budget input (decoding
    errors part way surface while iterating, also as :class:`AudioError`). Errors and :attr:`AudioBlocks.name` call
    the source ``name`` (default: a path as given, a file object's file name, else ``<audio>``; the service says
    ``upload``). No decoder's own text is ever printed.
    """
    name = _describe(source, name)
    reader = _open_reader(source, name)
    rate, channels, frames = reader.sample_rate, max(1, reader.channels), reader.frames
    problem = None
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        problem = f"unsupported sample rate {rate} Hz (supported: {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz)"
    elif max_duration_s is not None and frames > max_duration_s * rate:
        problem = f"too long: {frames / rate:.1f} s, the limit is {max_duration_s:.0f} s"
    blocks = AudioBlocks(reader, name, block_s, max_duration_s, max_decoded_samples)
    if problem is None and max_decoded_samples is not None and channels * frames > max_decoded_samples:
        problem = blocks.over_budget(channels * frames).reason
    if problem is not None:
        reader.close()
        raise AudioError(name, problem)
    return blocks
