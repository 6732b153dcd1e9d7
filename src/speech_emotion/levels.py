"""Recording level: the note every door gives a recording too quiet to judge reliably.

A recording whose peak stays below :data:`LOW_LEVEL_DBFS` (a microphone far away or with its gain turned down)
is still analysed (the front end normalises loudness), but its few significant bits carry mostly quantisation
noise and hiss, and its emotions change with the level; every door that finds speech in it says so in ``notes``
(and the CLI in a ``warning:`` line), as it says a file ended early. Without speech there is no emotion to doubt
(and 16-bit dither alone peaks near -78 dBFS), so no note.

Float samples beyond full scale (an over in a float WAV, or a caller's array in another range, such as int16 values
as floats) are clipped to [-1, 1] on the way in, which distorts them and changes the answer: every door says so too
(:func:`over_full_scale_note`), with or without speech. Overs below :data:`OVER_FULL_SCALE_DBFS` (a decoded MP3's
peaks often reach a few tenths of a dB beyond full scale) are clipped without a note: they change almost nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

import numpy as np

from .conditioning import integers_as_float

LOW_LEVEL_DBFS = -60.0
"""Recordings whose peak is below this level (dB relative to full scale) get :func:`low_level_note`."""


def low_level_note(peak: float) -> str | None:
    """The note for a recording whose largest absolute sample is ``peak`` (full scale 1.0); ``None`` when it is
    loud enough, or all zeros (digital silence, which is no speech and needs no note)."""
    if peak <= 0.0 or not math.isfinite(peak):
        return None
    level = 20 * math.log10(peak)
    if level >= LOW_LEVEL_DBFS:
        return None
    return (
        f"very low level: peak {level:.0f} dBFS (below {LOW_LEVEL_DBFS:.0f} dBFS); emotions of a recording this "
        "quiet are unreliable: record closer to the microphone or with more gain"
    )


OVER_FULL_SCALE_DBFS = 1.0
"""Float input whose peak is more than this many dB beyond full scale gets :func:`over_full_scale_note`."""


def over_full_scale_note(peak: float) -> str | None:
    """The note for float input whose largest absolute sample ``peak`` is more than :data:`OVER_FULL_SCALE_DBFS`
    beyond full scale (1.0); ``None`` otherwise."""
    if not peak > 10 ** (OVER_FULL_SCALE_DBFS / 20):
        return None
    return (
        f"samples beyond full scale (peak +{20 * math.log10(peak):.1f} dBFS) were clipped to [-1, 1]: the answer "
        "rests on distorted audio (float samples out of range, or damaged data)"
    )


LOUD_NO_SPEECH_DBFS = -20.0
"""Recordings without speech whose peak reaches this level get :func:`loud_no_speech_note`."""


def loud_no_speech_note(peak: float) -> str | None:
    """The note for a recording in which the speech detector found no speech although its largest absolute sample
    ``peak`` (full scale 1.0) reaches :data:`LOUD_NO_SPEECH_DBFS`: it holds sound, and the detector misses a few
    percent of strongly emotional speech (docs/vad.md); ``None`` for quieter recordings."""
    if not (peak >= 10 ** (LOUD_NO_SPEECH_DBFS / 20) and math.isfinite(peak)):
        return None
    level = round(20 * math.log10(peak))  # beyond full scale as the over-full-scale note says it
    return (
        f"sound peaking at {level:+d} dBFS held no speech for the speech detector: music, noise or tones, or speech "
        "it missed (it misses some shouted or sobbing speech)"
    ).replace("+0 dBFS", "0 dBFS")


class PeakMeter:
    """Passes blocks through (``meter(blocks)``) and keeps their largest absolute sample, for :meth:`notes`."""

    def __init__(self) -> None:
        self.peak = 0.0

    def __call__(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            self.add(block)
            yield block

    def add(self, block: np.ndarray) -> None:
        """Take ``block``'s largest absolute sample into the peak: floats as they are (full scale 1.0), integers
        scaled by their type's full range as the conditioner scales them (so int16 input gets its note too)."""
        block = np.asarray(block)
        if block.size:
            samples = integers_as_float(block) if block.dtype.kind in "iu" else block
            self.peak = max(self.peak, float(np.max(np.abs(samples))))

    def notes(self, speech_found: bool) -> list[str]:
        """The level notes of the blocks seen so far: :func:`over_full_scale_note`; :func:`low_level_note` when
        ``speech_found`` (without speech there are no emotions to doubt), :func:`loud_no_speech_note` when not."""
        found = [
            over_full_scale_note(self.peak),
            low_level_note(self.peak) if speech_found else loud_no_speech_note(self.peak),
        ]
        return [note for note in found if note is not None]
