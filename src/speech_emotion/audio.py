"""The audio input layer: any file soundfile reads, any chunk of samples, to 16 kHz mono float32.

- :func:`open_blocks` reads paths, bytes and file objects a block at a time (memory flat);
- :class:`SampleConditioner` turns raw chunks (any rate, type, channels) into 16 kHz mono,
  high-passed samples: one rule for sample types, shapes, NaN/Inf and channel mixing;
- :func:`prepare` trims and loudness-normalises a whole clip for the model.

Training, evaluation, inference and streaming all go through these, so a model always sees
audio prepared the same way and every door decodes what the others decode.
"""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Union

import numpy as np
import soundfile as sf
import soxr

from .errors import AudioError
from .words import plural

SAMPLE_RATE = 16000
"""Sample rate of every waveform inside the project."""

AudioSource = Union[str, Path, bytes, BinaryIO]

AUDIO_SUFFIXES = (
    *(".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".caf"),
    *(".m4a", ".aac", ".mp4", ".m4v", ".mov", ".3gp", ".webm", ".mka", ".mkv", ".amr", ".wma"),
)
"""File name endings of audio (and of video whose audio track is read) that :func:`open_blocks` decodes."""

MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 768000
"""Sample rates accepted from files and streams; a file whose header says otherwise is refused before decoding."""

MAX_DECODED_SAMPLES = 600 * 48000 * 2
"""The service's default decode budget for :func:`open_blocks`: ``channels x frames`` of 600 s of 48 kHz stereo
(57.6 M samples). It bounds the work one upload may ask for, whatever its compressed size."""

MAX_BLOCK_SAMPLES = 1 << 20
"""Most samples (over all channels) in one decoded block, so a block's memory is bounded whatever the rate and
channel count (4 MiB of float32)."""


@dataclass(frozen=True)
class AudioOptions:
    """How raw audio becomes model input."""

    sample_rate: int = SAMPLE_RATE
    trim: bool = True
    trim_top_db: float = 30.0
    """Leading/trailing audio quieter than the clip's peak by this many dB is cut."""
    normalize: bool = True
    target_rms_dbfs: float = -20.0
    """Loudness target; the gain is then lowered if the peak would pass ``peak_limit``."""
    peak_limit: float = 0.99
    min_duration_s: float = 0.25
    """Shorter audio (after trimming) is rejected: too little to judge an emotion."""
    silence_peak: float = 1e-4
    """Audio whose peak is below this (-80 dBFS) counts as silent."""
    max_duration_s: float | None = None
    """Longer files are rejected before decoding (``None``: no limit)."""
    highpass_hz: float | None = 5.0
    """Cut-off of the high-pass that removes DC offset and subsonic rumble (``None``: off); low enough
    that bundles trained without it give the same answers on RAVDESS (70 Hz changed 4 of 1440)."""


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


class _SoundFileReader:
    """libsndfile's reader (WAV, FLAC, OGG Vorbis/Opus, AIFF, CAF, ...): float32 ``(frames, channels)`` blocks."""

    def __init__(self, handle: sf.SoundFile) -> None:
        self._handle = handle
        self.sample_rate: int = handle.samplerate
        self.channels: int = handle.channels
        self.frames: int = announced_frames(handle)
        """Announced length in frames (more than the file holds when it was cut short)."""

    def read(self, frames: int) -> np.ndarray:
        try:
            return self._handle.read(frames, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
            raise _Undecodable(_decode_reason(exc)) from None

    def close(self) -> None:
        self._handle.close()


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
            raise _Undecodable("no audio track")
        codec = stream.codec_context
        if not (codec.name in AV_CODECS or codec.name.startswith("pcm_")):
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
            raise AudioError(name, "no such file")
        if path.is_dir():
            raise AudioError(name, "is a directory, not an audio file")
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
            sound = sf.SoundFile(io.BytesIO(handle) if isinstance(handle, bytes) else handle)
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
            _seek(handle, start)
            return _open_av(handle, recognised=True)
        return _SoundFileReader(sound)
    except PermissionError:
        raise AudioError(name, "permission denied") from None
    except _Undecodable as exc:
        raise AudioError(name, f"cannot decode audio ({exc.reason})") from None


def _tell(handle: str | bytes | BinaryIO) -> int:
    try:
        return handle.tell() if not isinstance(handle, (str, bytes)) else 0
    except (OSError, AttributeError, ValueError):
        return 0


def _seek(handle: str | bytes | BinaryIO, at: int) -> None:
    if not isinstance(handle, (str, bytes)):
        with contextlib.suppress(OSError, AttributeError, ValueError):
            handle.seek(at)


def read_audio(source: AudioSource, max_duration_s: float | None = None) -> tuple[np.ndarray, int]:
    """Decode all of ``source`` to float32 ``(frames, channels)`` samples and their rate (via :func:`open_blocks`).

    Raises :class:`AudioError` with a one-line reason for a missing, empty, corrupt,
    unsupported or over-long input.
    """
    blocks = open_blocks(source, max_duration_s=max_duration_s)
    parts = list(blocks)
    if not parts or sum(part.size for part in parts) == 0:
        raise AudioError(blocks.name, "contains no audio samples")
    return np.concatenate(parts, axis=0), blocks.sample_rate


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


MAX_CHANNELS = 32
"""More channels than this in a 2-D array means the layout is ``(channels, frames)``: refused."""


def as_float(chunk: np.ndarray, source: str = "<stream>") -> np.ndarray:
    """float32 ``(frames, channels)`` in [-1, 1] from int or float, ``(frames,)`` or ``(frames, channels)`` audio.

    Integer samples are scaled by their type's full range. Raises :class:`AudioError` for another
    sample type, another shape (naming it: a ``(channels, frames)`` array must be transposed first)
    or NaN / infinite samples -- the one rule for every path: such input is refused, never patched.
    """
    a = np.asarray(chunk)
    if a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        scale = float(2 ** (info.bits - 1))
        a = (a.astype(np.float64) - (scale if a.dtype.kind == "u" else 0.0)) / scale
    elif a.dtype.kind != "f":
        raise AudioError(source, f"unsupported sample type {a.dtype}")
    if a.ndim == 1:
        a = a[:, None]
    elif a.ndim != 2 or a.shape[1] > MAX_CHANNELS or (a.shape[1] == 0 and a.shape[0] > 0):
        hint = " (channels first? pass the transpose, samples.T)" if a.ndim == 2 and a.shape[0] <= MAX_CHANNELS else ""
        raise AudioError(source, f"expected (frames,) or (frames, channels) audio, got shape {a.shape}{hint}")
    a = np.asarray(a, dtype=np.float32)
    if not np.all(np.isfinite(a)):
        raise AudioError(source, "contains NaN or infinite samples")
    return np.clip(a, -1.0, 1.0)


MIX_FRAME = 1024
"""Input frames per downmix decision (a fixed grid, so the mix does not depend on chunking)."""


def safe_mix(frames: np.ndarray) -> np.ndarray:
    """Mono from ``(frames, channels)``: the channel mean, or the loudest channel where the mean loses
    most of the energy (channels that cancel, e.g. one polarity-inverted). Decided per :data:`MIX_FRAME` frames."""
    if frames.shape[1] == 1:
        return frames[:, 0]
    out = frames.mean(axis=1)
    for start in range(0, len(frames), MIX_FRAME):
        block = frames[start : start + MIX_FRAME]
        energy = np.mean(np.square(block, dtype=np.float64), axis=0)
        mixed = out[start : start + MIX_FRAME]
        if float(np.mean(np.square(mixed, dtype=np.float64))) < 0.1 * float(energy.max()):
            out[start : start + MIX_FRAME] = block[:, int(np.argmax(energy))]
    return out


class HighPass:
    """Streaming 2nd-order Butterworth high-pass (scipy): removes DC offset and subsonic rumble.

    The filter state starts as if the first sample had always been there, so a constant offset
    leaves no transient. Chunked and whole-signal filtering give the same samples.
    """

    def __init__(self, cutoff_hz: float, sample_rate: int = SAMPLE_RATE) -> None:
        from scipy.signal import butter, sosfilt_zi

        self._sos = butter(2, cutoff_hz, btype="highpass", fs=sample_rate, output="sos")
        self._zi_unit = sosfilt_zi(self._sos)
        self._zi: np.ndarray | None = None

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        from scipy.signal import sosfilt

        if len(samples) == 0:
            return np.asarray(samples, dtype=np.float32)
        if self._zi is None:
            self._zi = self._zi_unit * float(samples[0])
        out, self._zi = sosfilt(self._sos, samples, zi=self._zi)
        return out.astype(np.float32)


class SampleConditioner:
    """Raw chunks in, model-ready samples out: the one function turning audio into 16 kHz mono float32.

    Each chunk (any length, rate, int or float, ``(frames,)`` or ``(frames, channels)``) goes through
    :func:`as_float` (type, shape and NaN rule), :func:`safe_mix` (or picks ``channel``), a streaming
    soxr resampler and :class:`HighPass`. Output depends only on the samples, not on the chunking.
    """

    def __init__(self, highpass_hz: float | None = 5.0, channel: int | None = None, source: str = "<stream>") -> None:
        self.highpass_hz = highpass_hz
        self.channel = channel
        self.source = source
        self.reset()

    def reset(self) -> None:
        """Forget the stream (resampler, filter and mix state)."""
        self._rate: int | None = None
        self._resampler: Any = None
        self._highpass = HighPass(self.highpass_hz) if self.highpass_hz else None
        self._carry = np.zeros((0, 1), dtype=np.float32)

    def push(self, chunk: np.ndarray, sample_rate: int) -> np.ndarray:
        """16 kHz mono float32 for ``chunk``; a rate change ends the previous rate's resampling first.

        Raises :class:`AudioError` for an unsupported rate, sample type, shape, NaN or channel.
        """
        if (
            not isinstance(sample_rate, (int, float, np.integer, np.floating))
            or not float(sample_rate).is_integer()
            or not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE
        ):
            raise AudioError(self.source, f"unsupported sample rate {sample_rate!r}")
        frames = as_float(chunk, self.source)
        if self.channel is not None and self.channel >= frames.shape[1]:
            raise AudioError(
                self.source, f"has {plural(frames.shape[1], 'channel')}, no channel {self.channel} (0 = the first)"
            )
        out = []
        if int(sample_rate) != self._rate:
            out.append(self._finish_rate())
            self._rate = int(sample_rate)
            if self._rate != SAMPLE_RATE:
                self._resampler = soxr.ResampleStream(self._rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        out.append(self._convert(self._mix(frames, last=False), last=False))
        return _join(out)

    def finish(self) -> np.ndarray:
        """The samples still held (mix grid, resampler tail); the conditioner is then reset."""
        out = self._finish_rate()
        self.reset()
        return out

    def _finish_rate(self) -> np.ndarray:
        if self._rate is None:
            return np.zeros(0, dtype=np.float32)
        out = self._convert(self._mix(np.zeros((0, self._carry.shape[1]), dtype=np.float32), last=True), last=True)
        self._resampler = None
        self._rate = None
        return out

    def _mix(self, frames: np.ndarray, last: bool) -> np.ndarray:
        if self.channel is not None:
            return frames[:, self.channel] if len(frames) else np.zeros(0, dtype=np.float32)
        if frames.shape[1] == 1 and len(self._carry) == 0:
            return frames[:, 0]
        if len(self._carry) and self._carry.shape[1] != frames.shape[1]:
            raise AudioError(self.source, f"channel count changed from {self._carry.shape[1]} to {frames.shape[1]}")
        data = np.concatenate([self._carry, frames]) if len(self._carry) else frames
        n = len(data) if last else len(data) // MIX_FRAME * MIX_FRAME
        self._carry = data[n:].copy()
        return safe_mix(data[:n])

    def _convert(self, samples: np.ndarray, last: bool) -> np.ndarray:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        if self._highpass is not None:
            samples = self._highpass(samples)
        return np.asarray(samples, dtype=np.float32)


def _join(parts: list[np.ndarray]) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def conditioned(blocks: Iterable[np.ndarray], sample_rate: int, conditioner: SampleConditioner) -> Iterator[np.ndarray]:
    """The non-empty 16 kHz mono outputs of ``conditioner`` for consecutive raw ``blocks``, its tail included."""
    for block in blocks:
        samples = conditioner.push(block, sample_rate)
        if len(samples):
            yield samples
    tail = conditioner.finish()
    if len(tail):
        yield tail


def condition(
    samples: np.ndarray, sample_rate: int, highpass_hz: float | None = 5.0, source: str = "<audio>"
) -> np.ndarray:
    """A whole signal through :class:`SampleConditioner`: 16 kHz mono float32, DC-free."""
    return _join(list(conditioned([samples], sample_rate, SampleConditioner(highpass_hz, source=source))))


def trim_silence(samples: np.ndarray, top_db: float) -> np.ndarray:
    """Cut leading and trailing audio more than ``top_db`` below the peak (librosa)."""
    import librosa

    trimmed, _ = librosa.effects.trim(samples, top_db=top_db, frame_length=1024, hop_length=256)
    return trimmed


def resample(samples: np.ndarray, sample_rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono audio with soxr (high quality); a no-op when the rates match."""
    if sample_rate == target_rate:
        return np.asarray(samples, dtype=np.float32)
    return soxr.resample(samples, sample_rate, target_rate, quality="HQ").astype(np.float32)


def normalize_loudness(samples: np.ndarray, target_rms_dbfs: float, peak_limit: float) -> np.ndarray:
    """Scale to the target RMS level, lowered if needed so the peak stays under ``peak_limit``."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    peak = float(np.max(np.abs(samples)))
    if rms <= 0.0 or peak <= 0.0:
        return samples
    gain = min(10 ** (target_rms_dbfs / 20) / rms, peak_limit / peak)
    return (samples * gain).astype(np.float32)


def preprocess(
    samples: np.ndarray,
    sample_rate: int,
    options: AudioOptions = AudioOptions(),
    source: str = "<audio>",
) -> np.ndarray:
    """Model input from raw audio: :func:`condition` (mono, 16 kHz, high-pass) then :func:`prepare`.

    ``samples``: ``(frames,)`` or ``(frames, channels)``, int or float. Raises :class:`AudioError`
    for empty, NaN, silent or too-short audio.
    """
    if np.asarray(samples).size == 0:
        raise AudioError(source, "contains no audio samples")
    return prepare(condition(samples, sample_rate, options.highpass_hz, source), options, source)


def prepare(samples: np.ndarray, options: AudioOptions = AudioOptions(), source: str = "<audio>") -> np.ndarray:
    """Trimmed, length-checked and loudness-normalised float32 from conditioned 16 kHz mono samples.

    Raises :class:`AudioError` for empty, silent or too-short audio.
    """
    if samples.size == 0:
        raise AudioError(source, "contains no audio samples")
    if float(np.max(np.abs(samples))) < options.silence_peak:
        raise AudioError(source, "audio is silent")
    if options.trim:
        samples = trim_silence(samples, options.trim_top_db)
    duration = samples.size / options.sample_rate
    if duration < options.min_duration_s:
        raise AudioError(
            source,
            f"too short: {duration:.2f} s of sound, at least {options.min_duration_s:.2f} s needed",
        )
    if options.normalize:
        samples = normalize_loudness(samples, options.target_rms_dbfs, options.peak_limit)
    return np.ascontiguousarray(samples, dtype=np.float32)


def load_samples(source: AudioSource, options: AudioOptions = AudioOptions()) -> np.ndarray:
    """All of ``source`` as conditioned 16 kHz mono float32 (read in blocks through :func:`open_blocks`)."""
    blocks = open_blocks(source, max_duration_s=options.max_duration_s)
    conditioner = SampleConditioner(options.highpass_hz, source=blocks.name)
    samples = _join(list(conditioned(blocks, blocks.sample_rate, conditioner)))
    if samples.size == 0:
        raise AudioError(blocks.name, "contains no audio samples")
    return samples


def load_audio(source: AudioSource, options: AudioOptions = AudioOptions()) -> np.ndarray:
    """Read ``source`` and prepare it as model input: the single entry point from a file to a whole-clip model input."""
    return prepare(load_samples(source, options), options, _describe(source))
