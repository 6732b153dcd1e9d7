"""Test clips under recording conditions, as files: any recipe scores them through its ordinary path.

:func:`condition_corpus` writes each test clip through a fixed condition of
:data:`~speech_emotion.training.conditions.TEST_CONDITIONS` (to the 16 kHz mono recording, before the
product's preprocessing, as a real channel would) into a content-keyed cache folder, and returns the corpus
with those rows pointing at the degraded files. Training rows are never touched.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from ..conditioning import SAMPLE_RATE, SampleConditioner
from ..errors import DataError
from ..training.cache import default_cache_dir, file_digest
from ..training.conditions import TEST_CONDITIONS, other_talkers

CONDITIONS_VERSION = 1


def recording(path: str) -> np.ndarray:
    """A file as 16 kHz mono float32, without filtering, trimming or level changes (the product's own
    preprocessing runs later, on the degraded file)."""
    return SampleConditioner(highpass_hz=None).whole(path)


def condition_corpus(
    corpus: pd.DataFrame, rows: np.ndarray, condition: str, cache_dir: str | Path | None = None
) -> pd.DataFrame:
    """A copy of ``corpus`` whose ``rows`` are the clips under ``condition`` (files written once, cached by
    the clip's content, its babble voices and the condition). Raises :class:`DataError` for an unknown name."""
    if condition not in TEST_CONDITIONS:
        raise DataError(f"unknown condition {condition!r}; choose from {', '.join(TEST_CONDITIONS)}")
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = folder / f"conditions-v{CONDITIONS_VERSION}" / condition
    folder.mkdir(parents=True, exist_ok=True)
    out = corpus.copy()
    paths = out["path"].to_numpy().copy()
    for row in np.asarray(rows, dtype=int):
        source = str(corpus["path"].iloc[row])
        voices = other_talkers(corpus, int(row), condition) if condition.startswith("babble") else ()
        key = hashlib.sha1("|".join([file_digest(source), *(Path(v).name for v in voices)]).encode()).hexdigest()
        target = folder / key[:2] / f"{key[:16]}.flac"
        if not target.exists():
            clip = recording(source)
            seed = int(key[:8], 16)
            degraded = TEST_CONDITIONS[condition](clip, [recording(v) for v in voices], seed)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp.flac")
            sf.write(tmp, np.clip(degraded, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_24")
            tmp.replace(target)
        paths[row] = str(target)
    out["path"] = paths
    return out
