"""Voice activity detection: WebRTC's VAD plus two cheap guards, and a hangover state machine.

Each 30 ms frame of 16 kHz audio counts as voiced when WebRTC's GMM classifier says speech,
the frame is louder than a floor, and its spectrum is not flat like broadband noise (WebRTC's
VAD alone takes loud white noise for speech). The decision does not depend on the recording
level: before the floor and WebRTC see a frame, an automatic gain lifts quiet recordings towards
a normal speech level, never lifting the recording's own noise floor (tracked per frame) above
``noise_target_dbfs``, so quiet speech is found and steady hiss or dither stays below the floor. A run of voiced
frames opens a speech segment, a run of unvoiced frames closes it; segment edges are padded a
little. Decisions depend only on the sample sequence, never on how it was chunked.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .conditioning import SAMPLE_RATE


@dataclass(frozen=True)
class VadOptions:
    """Frame classifier and segment state machine settings."""

    aggressiveness: int = 2
    """WebRTC VAD mode, 0 (least) to 3 (most eager to call a frame non-speech)."""
    frame_ms: int = 30
    """10, 20 or 30 ms frames (WebRTC's choices)."""
    min_speech_ms: int = 120
    """Voiced frames in a row that open a segment (ignores clicks and short bursts)."""
    min_silence_ms: int = 700
    """Unvoiced frames in a row that close a segment (the hangover: short pauses stay inside)."""
    speech_pad_ms: int = 90
    """Audio kept before the first and after the last voiced frame of a segment."""
    energy_floor_dbfs: float = -60.0
    """Frames quieter than this (RMS, after the automatic gain) are never speech."""
    speech_target_dbfs: float = -25.0
    """The automatic gain lifts the loudest recent frames (RMS) up to this level, no further."""
    noise_target_dbfs: float = -65.0
    """... and never lifts the tracked noise floor above this level (so noise stays below the floor)."""
    max_gain_db: float = 40.0
    """Upper bound of the automatic gain (0 turns it off: the absolute floor of earlier versions)."""
    level_release_db_s: float = 2.0
    """How fast the tracked speech level falls after loud audio (dB per second)."""
    noise_rise_db_s: float = 3.0
    """How fast the tracked noise floor rises when no quieter frame comes (dB per second)."""
    max_flatness: float | None = 0.45
    """Frames whose 300-3800 Hz spectral flatness is above this (white noise ~0.55, voiced
    speech < 0.1) are not speech; ``None`` turns the check off."""
    adapt_pauses: int = 8
    """WebRTC's VAD adapts its speech and noise models to the audio it hears, so a single instance judges the same
    speech differently an hour later. A new instance starts at every pause (``min_silence_ms`` of non-speech frames)
    and decisions come from the one started this many pauses ago: they depend on the audio since then only."""

    def __post_init__(self) -> None:
        if self.frame_ms not in (10, 20, 30):
            raise ValueError("frame_ms must be 10, 20 or 30")
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError("aggressiveness must be 0..3")
        if self.adapt_pauses < 1:
            raise ValueError("adapt_pauses must be at least 1")

    @property
    def frame_length(self) -> int:
        """Samples per frame at 16 kHz."""
        return SAMPLE_RATE * self.frame_ms // 1000


@dataclass(frozen=True)
class VadEvent:
    """A segment edge, in samples at 16 kHz from the stream start."""

    kind: Literal["start", "end"]
    sample: int


class FrameClassifier:
    """Speech / non-speech decision for whole 16 kHz frames."""

    def __init__(self, options: VadOptions = VadOptions()) -> None:
        self.options = options
        n = options.frame_length
        self._window = np.hanning(n).astype(np.float32)
        self._nfft = 1 << (n - 1).bit_length()
        freqs = np.fft.rfftfreq(self._nfft, 1 / SAMPLE_RATE)
        self._band = (freqs >= 300) & (freqs <= 3800)
        self._floor = 10 ** (options.energy_floor_dbfs / 20)
        self._release = options.level_release_db_s * options.frame_ms / 1000
        self._rise = options.noise_rise_db_s * options.frame_ms / 1000
        self._pause = max(1, -(-options.min_silence_ms // options.frame_ms))
        self.reset()

    def reset(self) -> None:
        """Forget the tracked levels and WebRTC's adaptive state: the next frame starts a new stream."""
        self._vads = deque([self._webrtc()])  # oldest (deciding) first; one more starts at each pause
        self._quiet = 0
        self._speech_db = -np.inf
        self._noise_db = self.options.noise_target_dbfs

    def _webrtc(self) -> Any:
        import webrtcvad

        return webrtcvad.Vad(self.options.aggressiveness)

    def gains_db(self, levels_db: np.ndarray) -> np.ndarray:
        """Automatic gain (dB) for consecutive frames of RMS level ``levels_db`` (dBFS); updates the trackers.

        The gain lifts the loudest recent frame to ``speech_target_dbfs`` but keeps the tracked
        noise floor (fast down, slow up) at most at ``noise_target_dbfs``; it is never negative.
        """
        o = self.options
        gains = np.zeros(len(levels_db))
        speech, noise = self._speech_db, self._noise_db
        for i, level in enumerate(levels_db):
            speech = max(level, speech - self._release)
            noise = min(level, noise + self._rise)
            gains[i] = min(o.speech_target_dbfs - speech, o.noise_target_dbfs - noise, o.max_gain_db)
        self._speech_db, self._noise_db = speech, noise
        return np.maximum(gains, 0.0)

    def classify(self, frames: np.ndarray) -> np.ndarray:
        """Booleans for consecutive ``frames`` of shape ``(n, frame_length)``, float32 in [-1, 1].

        Stateful (level trackers): call with the frames of one stream in order; :meth:`reset` between streams.
        """
        if len(frames) == 0:
            return np.zeros(0, dtype=bool)
        rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
        gain = 10 ** (self.gains_db(20 * np.log10(np.maximum(rms, 1e-10))) / 20)
        frames = frames * gain[:, None].astype(np.float32)
        ok = rms * gain >= self._floor
        if self.options.max_flatness is not None and ok.any():
            power = np.abs(np.fft.rfft(frames * self._window, self._nfft, axis=1))[:, self._band] ** 2 + 1e-12
            flatness = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
            ok &= flatness <= self.options.max_flatness
        pcm = (np.clip(frames, -1.0, 1.0) * 32767).astype(np.int16)
        for i in range(len(ok)):
            if ok[i]:
                frame = pcm[i].tobytes()
                votes = [vad.is_speech(frame, SAMPLE_RATE) for vad in self._vads]  # every instance adapts to it
                ok[i] = votes[0]  # the oldest decides
            self._quiet = 0 if ok[i] else self._quiet + 1
            if self._quiet == self._pause:  # a pause: a new instance starts, the oldest beyond the memory retires
                self._vads.append(self._webrtc())
                if len(self._vads) > self.options.adapt_pauses:
                    self._vads.popleft()
        return ok


class SpeechSegmenter:
    """Turns per-frame speech flags into segment start/end events (padded, with hangover)."""

    def __init__(self, options: VadOptions = VadOptions()) -> None:
        self.options = options
        f = options.frame_length
        self._min_speech = max(1, -(-options.min_speech_ms * SAMPLE_RATE // 1000 // f))
        self._min_silence = max(1, -(-options.min_silence_ms * SAMPLE_RATE // 1000 // f))
        self._pad = options.speech_pad_ms * SAMPLE_RATE // 1000
        self.reset()

    def reset(self) -> None:
        """Forget all state: the next frame is frame 0 of a new stream."""
        self.position = 0
        """Samples consumed so far (end of the last frame)."""
        self.in_speech = False
        self.last_voiced_end = 0
        """End sample of the most recent voiced frame."""
        self.frame_voiced = False
        """Whether the most recent frame was voiced (for a live indicator)."""
        self._run_start = 0
        self._voiced_run = 0
        self._silent_run = 0
        self._last_end = 0

    def step(self, voiced: bool) -> VadEvent | None:
        """Advance by one frame; returns the segment edge this frame confirms, if any."""
        f = self.options.frame_length
        start = self.position
        self.position += f
        self.frame_voiced = bool(voiced)
        if voiced:
            if self._voiced_run == 0:
                self._run_start = start
            self._voiced_run += 1
            self._silent_run = 0
            self.last_voiced_end = self.position
        else:
            self._voiced_run = 0
            self._silent_run += 1
        if not self.in_speech and self._voiced_run >= self._min_speech:
            self.in_speech = True
            return VadEvent("start", max(self._run_start - self._pad, self._last_end, 0))
        if self.in_speech and self._silent_run >= self._min_silence:
            return self._close(min(self.last_voiced_end + self._pad, self.position))
        return None

    def finish(self) -> VadEvent | None:
        """End of stream: closes an open segment."""
        if not self.in_speech:
            return None
        return self._close(min(self.last_voiced_end + self._pad, self.position))

    def _close(self, end: int) -> VadEvent:
        self.in_speech = False
        self._last_end = end
        self._voiced_run = 0
        return VadEvent("end", end)


class VoiceActivityDetector:
    """Frame classifier + segmenter over a 16 kHz stream fed in chunks of any size."""

    def __init__(self, options: VadOptions = VadOptions()) -> None:
        self.options = options
        self.classifier = FrameClassifier(options)
        self.segmenter = SpeechSegmenter(options)
        self._pending = np.zeros(0, dtype=np.float32)

    def reset(self) -> None:
        self.classifier.reset()
        self.segmenter.reset()
        self._pending = np.zeros(0, dtype=np.float32)

    @property
    def in_speech(self) -> bool:
        return self.segmenter.in_speech

    def process(self, samples: np.ndarray) -> list[VadEvent]:
        """Segment edges confirmed by ``samples`` (mono float32 at 16 kHz)."""
        f = self.options.frame_length
        data = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32)])
        n = len(data) // f
        self._pending = data[n * f :].copy()
        flags = self.classifier.classify(data[: n * f].reshape(n, f))
        events = [self.segmenter.step(bool(v)) for v in flags]
        return [e for e in events if e is not None]

    def flush(self) -> list[VadEvent]:
        """End of stream: a trailing partial frame is dropped and an open segment closed."""
        self._pending = np.zeros(0, dtype=np.float32)
        event = self.segmenter.finish()
        return [event] if event else []


def speech_segments(samples: np.ndarray, options: VadOptions = VadOptions()) -> list[tuple[float, float]]:
    """``(start_s, end_s)`` of the speech in a whole 16 kHz mono signal."""
    vad = VoiceActivityDetector(options)
    events = vad.process(samples) + vad.flush()
    starts = [e.sample for e in events if e.kind == "start"]
    ends = [e.sample for e in events if e.kind == "end"]
    return [(s / SAMPLE_RATE, e / SAMPLE_RATE) for s, e in zip(starts, ends)]
