"""File analysis for uploads: the ``speech-emotion analyze`` timeline, from bytes held in memory.

:func:`~speech_emotion.timeline.analyze_file` reads a path block by block; an upload is already
in memory (client file names never reach the file system), so it is decoded with
:func:`~speech_emotion.audio.read_audio` and fed to the same streaming engine in blocks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..audio import read_audio
from ..errors import AudioError
from ..inference import Recognizer
from ..streaming import SegmentEvent, StreamingRecognizer
from ..timeline import AnalyzeOptions, Timeline

UPLOAD_NAME = "upload"
"""Name given to uploaded audio in results and messages (the client's file name is never used)."""


def analyze_bytes(
    data: bytes,
    recognizer: Recognizer,
    max_duration_s: float | None,
    options: AnalyzeOptions | None = None,
) -> dict[str, Any]:
    """The timeline JSON of an uploaded recording (the same document as ``speech-emotion analyze``)."""
    options = options or AnalyzeOptions()
    samples, sr = read_audio(data, max_duration_s)
    if not np.all(np.isfinite(samples)):
        raise AudioError(UPLOAD_NAME, "contains NaN or infinite samples")
    engine = StreamingRecognizer(recognizer, options.stream)
    timeline = Timeline(
        source=UPLOAD_NAME,
        duration_s=len(samples) / sr,
        sample_rate=sr,
        model=recognizer.name,
        labels=recognizer.labels,
        top_moments=options.top_moments,
    )
    block = max(1, int(options.block_s * sr))
    for start in range(0, len(samples), block):
        _collect(timeline, engine.feed(samples[start : start + block], sr), options.keep_windows)
    _collect(timeline, engine.flush(), options.keep_windows)
    return timeline.to_dict()


def _collect(timeline: Timeline, events: list[Any], keep_windows: bool) -> None:
    for event in events:
        if isinstance(event, SegmentEvent):
            timeline.segments.append(event)
        elif keep_windows:
            timeline.windows.append(event)
