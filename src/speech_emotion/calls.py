"""Two-party calls: the emotion of each channel of a recording beside that of the whole call.

A call recorded with each party on its own channel gets, through ``predict --channels split`` and
``POST /v1/predict?channels=split``, the whole-call answer of :func:`~speech_emotion.recording.predict_blocks`
(a safe mix of the channels: the answer without ``split``) and the same answer for each channel alone, the way
``analyze --channels split`` gives a timeline per channel. The recording is read once, block by block (memory flat),
through :func:`~speech_emotion.timeline.analyze_call`, as ``batch --channels split`` reads it: both give the whole call
the same answer. A channel without speech (a party who only listened) is answered ``no_speech``; so is the mix when
the speech detector finds none in it (one party's line is loud noise, say) while a channel holds speech: the
channels' answers are still given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .recognizer import Recognizer
from .recording import NoSpeechError, RecordingOptions, RecordingPrediction, timeline_prediction
from .timeline import analyze_call


@dataclass(frozen=True)
class ChannelAnswer:
    """The answer for one channel (0: the first): a prediction, or no speech."""

    channel: int
    prediction: RecordingPrediction | None
    """``None`` when the channel holds no speech (:attr:`no_speech` says how long it was)."""
    no_speech: NoSpeechError | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.prediction is not None:
            return {"channel": self.channel, "status": "ok", **self.prediction.to_dict()}
        assert self.no_speech is not None
        return {
            "channel": self.channel,
            "status": "no_speech",
            "error": "no_speech",
            "message": str(self.no_speech),
            "duration_s": round(self.no_speech.duration_s, 3),
            "notes": list(self.no_speech.notes),
        }


class CallNoSpeechError(NoSpeechError):
    """A call in which neither the mix nor any channel holds speech: the mix's :class:`NoSpeechError` (its duration
    and notes) and each channel's answer, in order (a note only one channel has, such as a loud tone on it, is in
    that channel's answer)."""

    def __init__(
        self, source: str, duration_s: float, notes: tuple[str, ...], channels: tuple[ChannelAnswer, ...]
    ) -> None:
        super().__init__(source, duration_s, notes)
        self.channels = channels

    def __reduce__(self) -> tuple[type, tuple[str, float, tuple[str, ...], tuple[ChannelAnswer, ...]]]:
        return (type(self), (self.source, self.duration_s, self.notes, self.channels))


@dataclass(frozen=True)
class CallPrediction:
    """The whole call's prediction and one :class:`ChannelAnswer` per channel."""

    whole: RecordingPrediction | None
    """``None`` when the mix of the channels holds no speech but a channel does (:attr:`whole_no_speech` says so)."""
    channels: tuple[ChannelAnswer, ...]
    whole_no_speech: NoSpeechError | None = None

    def to_dict(self) -> dict[str, Any]:
        """The whole call's :meth:`RecordingPrediction.to_dict` with ``channels``: each channel's, in order. Without
        speech in the mix, its fields are empty (``label`` null, ``speech_s`` 0) and ``message`` says why."""
        channels = {"channels": [c.to_dict() for c in self.channels]}
        if self.whole is not None:
            return {**self.whole.to_dict(), **channels}
        assert self.whole_no_speech is not None
        none = self.whole_no_speech
        return {
            "label": None,
            "confidence": None,
            "probabilities": {},
            "duration_s": round(none.duration_s, 3),
            "speech_s": 0.0,
            "segments": 0,
            "notes": list(none.notes),
            "uncertain": False,
            "message": f"{none} in the mix of the channels",
            **channels,
        }


def predict_call(
    source: str | Path | bytes,
    recognizer: Recognizer,
    options: RecordingOptions | None = None,
    max_decoded_samples: int | None = None,
    name: str | None = None,
) -> CallPrediction:
    """The emotion of the whole recording ``source`` (a path or bytes, read once) and of each channel.

    ``max_decoded_samples`` and ``name`` are :func:`~speech_emotion.decode.open_blocks`'s. Raises
    :class:`CallNoSpeechError` when no channel holds speech, :class:`~speech_emotion.errors.AudioError` when the
    recording cannot be read or is over a limit.
    """
    options = options or RecordingOptions()
    mix, parts = analyze_call(
        source, recognizer, options.analyze_options, options.max_duration_s, max_decoded_samples, name
    )
    answers = []
    for part in parts:
        assert part.channel is not None
        try:
            answers.append(ChannelAnswer(part.channel, timeline_prediction(part, recognizer)))
        except NoSpeechError as exc:
            answers.append(ChannelAnswer(part.channel, None, exc))
    try:
        return CallPrediction(timeline_prediction(mix, recognizer), tuple(answers))
    except NoSpeechError as exc:
        if all(answer.prediction is None for answer in answers):
            raise CallNoSpeechError(exc.source, exc.duration_s, exc.notes, tuple(answers)) from None
        return CallPrediction(None, tuple(answers), exc)
