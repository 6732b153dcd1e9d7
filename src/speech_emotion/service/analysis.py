"""File analysis for uploads: the ``speech-emotion analyze`` timeline, from bytes held in memory.

An upload is already in memory (client file names never reach the file system); it is read in
blocks with :func:`~speech_emotion.audio.open_blocks` and fed through
:func:`~speech_emotion.timeline.analyze_blocks`, the reader and loop ``analyze`` itself uses.
"""

from __future__ import annotations

from typing import Any

from ..audio import open_blocks
from ..recognizer import Recognizer
from ..recording import NoSpeechError
from ..report import timeline_document
from ..timeline import AnalyzeOptions, analyze_blocks

UPLOAD_NAME = "upload"
"""Name given to uploaded audio in results and messages (the client's file name is never used)."""


def analyze_bytes(
    data: bytes,
    recognizer: Recognizer,
    max_duration_s: float | None,
    max_decoded_samples: int | None = None,
    options: AnalyzeOptions | None = None,
) -> dict[str, Any]:
    """The timeline JSON of an uploaded recording (the same document as ``speech-emotion analyze``).

    ``max_decoded_samples`` is the decode budget checked on the header (see
    :func:`~speech_emotion.audio.open_blocks`). Raises :class:`~speech_emotion.recording.NoSpeechError` when it
    holds no speech, :class:`AudioError` when it cannot be used or is over a limit.
    """
    options = options or AnalyzeOptions()
    blocks = open_blocks(data, options.block_s, max_duration_s, max_decoded_samples)
    timeline = analyze_blocks(
        blocks, blocks.sample_rate, recognizer, options, source=UPLOAD_NAME, duration_s=blocks.duration_s
    )
    if not timeline.segments:
        raise NoSpeechError(UPLOAD_NAME, timeline.duration_s)
    return timeline_document(timeline)
