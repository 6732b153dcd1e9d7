"""Errors a user can act on: each carries one line that names the input and the reason."""

from __future__ import annotations


class SpeechEmotionError(Exception):
    """Base class: ``str(error)`` is a one-line message fit for stderr or a JSON error body."""


class AudioError(SpeechEmotionError):
    """Audio that cannot be used: missing, empty, corrupt, unsupported, silent or too short."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class DataError(SpeechEmotionError):
    """A corpus, manifest or fold file that cannot be used."""


class ModelError(SpeechEmotionError):
    """A model bundle that cannot be loaded."""
