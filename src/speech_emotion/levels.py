"""Recording level: the note every door gives a recording too quiet to judge reliably.

A recording whose peak stays below :data:`LOW_LEVEL_DBFS` (a microphone far away or with its gain turned down)
is still analysed (the front end normalises loudness), but its few significant bits carry mostly quantisation
noise and hiss, and its emotions change with the level; every door that finds speech in it says so in ``notes``
(and the CLI in a ``warning:`` line), as it says a file ended early. Without speech there is no emotion to doubt
(and 16-bit dither alone peaks near -78 dBFS), so no note.
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


class PeakMeter:
    """Passes blocks through (``meter(blocks)``) and keeps their largest absolute sample, for :meth:`note`."""

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

    def note(self) -> str | None:
        """:func:`low_level_note` of the blocks seen so far."""
        return low_level_note(self.peak)
