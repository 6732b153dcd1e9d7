"""File analysis for uploads: the ``speech-emotion analyze`` timeline, from bytes held in memory.

An upload is already in memory (client file names never reach the file system); it is read in
blocks and analysed by :func:`~speech_emotion.timeline.analyze_channels`, the reader and loop
``analyze`` itself uses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from ..recognizer import Recognizer
from ..recording import NoSpeechError
from ..report import channels_document
from ..timeline import AnalyzeOptions, analyze_channels
from .errors import UPLOAD_NAME


def analyze_bytes(
    data: bytes,
    recognizer: Recognizer,
    max_duration_s: float | None,
    max_decoded_samples: int | None = None,
    options: AnalyzeOptions | None = None,
    channels: Literal["mix", "split"] = "mix",
) -> dict[str, Any]:
    """The timeline JSON of an uploaded recording (the same document as ``speech-emotion analyze``; with
    ``channels="split"`` a :func:`~speech_emotion.report.channels_document`, one timeline per channel).

    ``max_decoded_samples`` is the decode budget checked on the header (see
    :func:`~speech_emotion.decode.open_blocks`). Raises :class:`~speech_emotion.recording.NoSpeechError` when no
    channel holds speech, :class:`AudioError` when it cannot be used or is over a limit.
    """
    options = replace(options or AnalyzeOptions(), channels=channels)
    timelines = analyze_channels(data, recognizer, options, None, max_duration_s, max_decoded_samples, UPLOAD_NAME)
    if not any(t.segments for t in timelines):
        raise NoSpeechError(UPLOAD_NAME, timelines[0].duration_s, tuple(timelines[0].notes))
    return channels_document(timelines)
