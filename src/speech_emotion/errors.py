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

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        """Picklable with both fields (raised in a worker process, re-raised in the parent)."""
        return (type(self), (self.source, self.reason))


class DataError(SpeechEmotionError):
    """A corpus, manifest or fold file that cannot be used."""


class ModelError(SpeechEmotionError):
    """A model bundle that cannot be loaded."""


class UsageError(SpeechEmotionError):
    """Command-line options that cannot go together (the CLI exits 2, as for any other usage error)."""


def error_code(exc: SpeechEmotionError) -> str:
    """The stable machine-readable code of an error: the ``error`` of ``predict --json`` and of the service's
    JSON errors (``no_speech``, ``audio_too_long``, ``audio_too_large``, ``unsupported_audio``, ``empty_upload``,
    ``unusable_audio``; for a path: ``not_found``, or ``not_a_file`` for a folder, device, pipe or socket;
    ``bad_model``, ``bad_data`` or ``error`` for errors that are not about audio)."""
    if isinstance(exc, ModelError):
        return "bad_model"
    if isinstance(exc, DataError):
        return "bad_data"
    if not isinstance(exc, AudioError):
        return "error"
    reason = exc.reason
    if reason.startswith("no such file"):
        return "not_found"
    if reason.startswith(("is a directory", "not a regular file")):
        return "not_a_file"
    if reason.startswith("no speech detected"):
        return "no_speech"
    if reason.startswith("too long"):
        return "audio_too_long"
    if reason.startswith("too large to decode"):
        return "audio_too_large"
    if reason.startswith(("cannot decode", "decoding failed", "unsupported")):
        return "unsupported_audio"
    if "empty" in reason:
        return "empty_upload"
    return "unusable_audio"
