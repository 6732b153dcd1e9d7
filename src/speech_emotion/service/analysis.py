"""File analysis for uploads: the ``speech-emotion analyze`` timeline, from bytes held in memory.

An upload is already in memory (client file names never reach the file system), so it is decoded
with :func:`~speech_emotion.audio.read_audio` and fed in blocks through
:func:`~speech_emotion.timeline.analyze_blocks`, the loop ``analyze`` itself uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..audio import read_audio
from ..errors import AudioError
from ..recognizer import Recognizer
from ..report import timeline_document
from ..timeline import AnalyzeOptions, analyze_blocks

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
    block = max(1, int(options.block_s * sr))

    def blocks() -> Iterator[np.ndarray]:
        for start in range(0, len(samples), block):
            yield samples[start : start + block]

    timeline = analyze_blocks(blocks(), sr, recognizer, options, source=UPLOAD_NAME, duration_s=len(samples) / sr)
    return timeline_document(timeline)
