"""Voice activity detection: a learned speech detector (Silero VAD) and a hangover state machine.

Each 32 ms frame (512 samples at 16 kHz) gets a speech probability from Silero VAD (see
:mod:`~speech_emotion.silero`), a recurrent network trained to tell speech from silence, noise,
music and tones; a frame is voiced when its probability reaches ``threshold``, and stays voiced
while it is above ``neg_threshold`` (hysteresis). The detector is sure of speech from about
-40 dBFS up; so that very quiet recordings are found too, an automatic gain lifts quiet audio
towards a normal speech level before the detector sees it, never lifting the recording's own noise
floor (tracked per frame) above ``noise_target_dbfs``; the audio as it is is scored too (its own
model state) and a frame's probability is the higher of the two. A run of voiced frames opens a
speech segment, a run of unvoiced frames closes it; segment edges are padded a little. Decisions
depend only on the sample sequence, never on how it was chunked (the frame grid starts at the
first sample of the stream).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .conditioning import SAMPLE_RATE
from .silero import WINDOW, SileroStream, score_streams


@dataclass(frozen=True)
class VadOptions:
    """Frame classifier and segment state machine settings."""

    threshold: float = 0.5
    """Speech probability at which a frame becomes voiced (Silero's own default)."""
    neg_threshold: float = 0.35
    """A voiced run continues while the probability stays at or above this (hysteresis)."""
    min_speech_ms: int = 120
    """Voiced frames in a row that open a segment (ignores clicks and short bursts)."""
    min_silence_ms: int = 700
    """Unvoiced frames in a row that close a segment (the hangover: short pauses stay inside)."""
    speech_pad_ms: int = 60
    """Audio kept before the first and after the last voiced frame of a segment."""
    speech_target_dbfs: float = -25.0
    """Before the detector sees a frame, an automatic gain lifts the loudest recent frames (RMS) up to this level."""
    noise_target_dbfs: float = -45.0
    """... but never lifts the tracked noise floor (the quietest recent frames) above this level."""
    max_gain_db: float = 30.0
    """Upper bound of the automatic gain (0 turns lifting off)."""
    raw_too: bool = True
    """Also score the audio as it is (a second model state, without the gain) and take the higher
    probability: the gain helps quiet speech but can hide loud speech after a lifted breath."""
    level_release_db_s: float = 2.0
    """How fast the tracked speech level falls after loud audio (dB per second)."""
    noise_rise_db_s: float = 3.0
    """How fast the tracked noise floor rises when no quieter frame comes (dB per second)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.neg_threshold <= self.threshold < 1.0:
            raise ValueError("thresholds must satisfy 0 < neg_threshold <= threshold < 1")
        if min(self.min_speech_ms, self.min_silence_ms, self.speech_pad_ms) < 0:
            raise ValueError("durations must not be negative")

    @property
    def frame_length(self) -> int:
        """Samples per frame at 16 kHz: the detector's window (512, 32 ms)."""
        return WINDOW

    @property
    def frame_ms(self) -> float:
        """Frame duration in milliseconds (32)."""
        return 1000 * WINDOW / SAMPLE_RATE


@dataclass(frozen=True)
class VadEvent:
    """A segment edge, in samples at 16 kHz from the stream start."""

    kind: Literal["start", "end"]
    sample: int


class FrameClassifier:
    """Speech / non-speech decision for whole 16 kHz frames of ``options.frame_length`` samples."""

    def __init__(self, options: VadOptions = VadOptions()) -> None:
        self.options = options
        self.detector = SileroStream(rows=2 if options.raw_too else 1)
        """The model state: row 0 scores the audio with the gain, row 1 (``raw_too``) the audio as it is."""
        seconds = options.frame_length / SAMPLE_RATE
        self._release = options.level_release_db_s * seconds
        self._rise = options.noise_rise_db_s * seconds
        self.reset()

    def reset(self) -> None:
        """Forget the detector's and the level trackers' state: the next frame starts a new stream."""
        self.detector.reset()
        self._voiced = False
        self._speech_db = -np.inf
        self._noise_db = self.options.noise_target_dbfs

    def gains_db(self, levels_db: np.ndarray) -> np.ndarray:
        """Automatic gain (dB) for consecutive frames of RMS level ``levels_db`` (dBFS); updates the trackers.

        The gain lifts the loudest recent frame (instant attack, slow release) to ``speech_target_dbfs``
        but keeps the tracked noise floor (fast down, slow up) at most at ``noise_target_dbfs``; it is
        never negative and at most ``max_gain_db``.
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

    def detector_input(self, frames: np.ndarray) -> np.ndarray:
        """What :attr:`detector` scores for consecutive ``frames`` ``(n, frame_length)``, float32 in [-1, 1]:
        ``(n, rows, frame_length)``, each frame with the automatic gain (row 0) and as it is (row 1, ``raw_too``).
        Advances the level trackers: the frames of one stream in order."""
        frames = np.clip(np.asarray(frames, dtype=np.float32), -1.0, 1.0)
        rms = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
        gain = 10 ** (self.gains_db(20 * np.log10(np.maximum(rms, 1e-10))) / 20)
        gained = np.clip(frames * gain[:, None].astype(np.float32), -1.0, 1.0)
        return np.stack([gained, frames], axis=1) if self.options.raw_too else gained[:, None]

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """Speech probability (0..1) ``(n,)`` of consecutive ``frames``, shape ``(n, frame_length)``, float32 in
        [-1, 1]: the higher of the model's score with the automatic gain and (``raw_too``) without it.

        Stateful (the model states and level trackers advance): the frames of one stream in order.
        """
        return self.detector.probabilities(self.detector_input(frames)).max(axis=1)

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Voiced flags ``(n,)`` from the :attr:`detector`'s scores ``(n, rows)`` of consecutive frames: the higher
        row against ``threshold``, or ``neg_threshold`` while voiced (hysteresis; stateful)."""
        flags = np.zeros(len(scores), dtype=bool)
        voiced = self._voiced
        for i, p in enumerate(np.max(scores, axis=1) if len(scores) else ()):
            voiced = bool(p >= (self.options.neg_threshold if voiced else self.options.threshold))
            flags[i] = voiced
        self._voiced = voiced
        return flags

    def classify(self, frames: np.ndarray) -> np.ndarray:
        """Booleans for consecutive ``frames`` of shape ``(n, frame_length)``, float32 in [-1, 1].

        Stateful (the detector's recurrent state and the hysteresis): call with the frames of one
        stream in order; :meth:`reset` between streams. Many streams at once: :func:`classify_streams`.
        """
        return classify_streams([self], [frames])[0]


def classify_streams(classifiers: Sequence[FrameClassifier], frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """:meth:`FrameClassifier.classify` of each stream's next ``frames`` ``(n_i, frame_length)``, the detector run
    on all streams together (:func:`~speech_emotion.silero.score_streams`): the same flags as one by one."""
    inputs = [
        c.detector_input(f) if len(f) else np.zeros((0, c.detector.rows, WINDOW), np.float32)
        for c, f in zip(classifiers, frames)
    ]
    scores = score_streams([c.detector for c in classifiers], inputs)
    return [c.decide(s) for c, s in zip(classifiers, scores)]


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
