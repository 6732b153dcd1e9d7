"""The ``whisper-base-probe`` recipe: frozen Whisper-base encoder, pooled layer statistics, linear probe.

Registered in :data:`~speech_emotion.training.recipes.RECIPES`, so ``speech-emotion train --recipe
whisper-base-probe`` and ``speech-emotion evaluate --recipe whisper-base-probe`` run it. The exported
bundle holds the encoder blocks up to the deepest used layer and the probe, int8 by default.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...conditioning import AudioOptions
from ...errors import ModelError
from ...features.logmel import LogMelOptions
from ...labels import emotion_index
from ..options import Allowed, allowed_values, checked_value, options_from
from .probe import LinearProbe, ProbeOptions, pooled_stats
from .states import StateOptions, StateStore

QUANTIZE = ("int8", "none")
"""Forms of the exported graph: int8 (as shipped) or float."""
SCORE_WITH = ("torch", "onnx", "onnx-int8")
"""How test rows are scored: from cached features in PyTorch, or through the exported float / int8 bundle."""


def check_choice(recipe: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    """:class:`ModelError` naming the option unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ModelError(f"{recipe}: option {name!r} must be one of {', '.join(choices)}, got {value!r}")


class ExportedProbe:
    """What the Whisper probe recipes share: the exported network (encoder blocks + pooled statistics + linear
    probe) and scoring through it. Subclasses set ``name``, ``probe``, ``probe_options`` (with ``layers``),
    ``quantize``, ``score_with``, ``_workdir``, and give :meth:`encoder_source` and ``describe()``."""

    name: str
    probe: LinearProbe | None
    quantize: str
    score_with: str
    _workdir: Path | None

    def encoder_source(self) -> tuple[str | None, AudioOptions, LogMelOptions]:
        """Checkpoint, preprocessing and log-mel options the probe was trained on."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def encoder_merge(self) -> tuple[int, ...]:
        """Layers after which the encoder merges positions in pairs
        (:attr:`~speech_emotion.training.whisper.encoder.EncoderConfig.merge_after`); none unless a recipe says."""
        return ()

    def keep(self, probe: LinearProbe, workdir: Path, rows: np.ndarray) -> None:
        """Make ``probe`` this recipe's and save it (with the rows it was fitted on) as ``workdir/probe.npz``."""
        self.probe = probe
        self._workdir = Path(workdir)
        self._workdir.mkdir(parents=True, exist_ok=True)
        np.savez(
            self._workdir / "probe.npz",
            mean=probe.mean,
            scale=probe.scale,
            coef=probe.coef,
            intercept=probe.intercept,
            rows=rows,
        )

    def score_exported(self, corpus: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        """Probabilities ``(len(rows), 8)`` of ``rows`` through the bundle exported as ``score_with`` says
        (``onnx``: float graph, ``onnx-int8``: as shipped) and :class:`~speech_emotion.recognizer.Recognizer`."""
        from ...conditioning import prepare
        from ...recognizer import Recognizer, softmax

        bundle = (self._workdir or Path(".")) / f"bundle-{self.score_with}"
        self.export(bundle, quantize="int8" if self.score_with == "onnx-int8" else "none")
        recognizer = Recognizer.load(bundle, threads=1)
        paths = corpus["path"].to_numpy()[np.asarray(rows, int)]
        return np.stack([softmax(recognizer.logits(prepare(p, recognizer.preprocessing))) for p in paths])

    def classifier(self):  # noqa: ANN201 - torch module
        """The PyTorch model the bundle is exported from (log-mel in, logits out)."""
        from .encoder import cached_encoder
        from .probe import ProbeClassifier

        if self.probe is None:
            raise ModelError(f"{self.name}: fit() must run before export()")
        layers = self.probe_options.layers  # type: ignore[attr-defined]
        encoder = cached_encoder(self.encoder_source()[0], max(max(layers), 1), self.encoder_merge())
        return ProbeClassifier(encoder, layers, [self.probe]).eval()

    def export(self, bundle_dir: Path, quantize: str | None = None) -> None:
        """Write the bundle (``model.onnx`` + ``model.json``) into ``bundle_dir``; int8 unless ``quantize`` says."""
        from .export import export_whisper

        _, audio, logmel = self.encoder_source()
        export_whisper(
            Path(bundle_dir),
            self.classifier(),
            self.name,
            audio,
            logmel,
            quantize=quantize or self.quantize,
            metadata={"recipe": self.describe()},
        )


class WhisperProbeRecipe(ExportedProbe):
    """Whisper-base hidden states (mean and std per layer) -> standardised multinomial logistic regression.

    ``copies``: augmented copies (speed perturbation + noise, before the encoder) of each training clip.
    ``score_with``: ``torch`` scores test rows from cached states; ``onnx`` / ``onnx-int8`` export the bundle
    and score through :class:`~speech_emotion.recognizer.Recognizer` (to measure the shipped form).
    Validation rows join the training rows: the probe has no epochs to choose.
    """

    name = "whisper-base-probe"

    def __init__(
        self,
        probe: Any = None,
        states: Any = None,
        copies: int = 2,
        quantize: str = "int8",
        score_with: str = "torch",
        **overrides: Any,
    ) -> None:
        unknown = sorted(set(overrides) - {"C"})
        if unknown:
            raise ModelError(
                f"{self.name}: unknown option {unknown[0]!r} (known: probe, states, copies, quantize, score_with, C)"
            )
        check_choice(self.name, "quantize", quantize, QUANTIZE)
        check_choice(self.name, "score_with", score_with, SCORE_WITH)
        self.probe_options = replace(
            options_from(ProbeOptions, probe, "probe"),
            **{k: checked_value(k, v, ProbeOptions.C, allowed_values(ProbeOptions)[k]) for k, v in overrides.items()},
        )
        self.state_options = options_from(StateOptions, states, "states")
        self.copies = checked_value("copies", copies, 2, Allowed(low=0))
        self.quantize = quantize
        self.score_with = score_with
        self.probe: LinearProbe | None = None
        self._store: StateStore | None = None
        self._workdir: Path | None = None

    @property
    def store(self) -> StateStore:
        if self._store is None:
            self._store = StateStore(self.state_options)
        return self._store

    def _stats(self, corpus: pd.DataFrame, rows: np.ndarray, copies: int = 0) -> tuple[np.ndarray, np.ndarray]:
        states, of_row = self.store.rows(corpus, rows, copies)
        return pooled_stats(states, self.probe_options.layers, self.probe_options.frame_norm), of_row

    def fit(self, corpus: pd.DataFrame, train: np.ndarray, val: np.ndarray, workdir: Path) -> list[dict]:
        rows = np.concatenate([np.asarray(train, int), np.asarray(val, int)])
        x, of_row = self._stats(corpus, rows, self.copies)
        y = np.array([emotion_index(e) for e in corpus["emotion"].to_numpy()[of_row]])
        self.keep(LinearProbe(self.probe_options).fit(x, y), workdir, rows)
        return []

    def predict_proba(self, corpus: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        if self.probe is None:
            raise ModelError(f"{self.name}: fit() must run before predict_proba()")
        if self.score_with == "torch":
            return self.probe.predict_proba(self._stats(corpus, np.asarray(rows, int))[0])
        return self.score_exported(corpus, rows)

    def encoder_source(self) -> tuple[str | None, AudioOptions, LogMelOptions]:
        return self.state_options.weights, self.state_options.audio, self.state_options.logmel

    def describe(self) -> dict[str, Any]:
        """Options as plain data (for metrics.json and model.json)."""
        states = asdict(self.state_options)
        states.pop("cache_dir", None)
        return {
            "probe": asdict(self.probe_options),
            "states": states,
            "copies": self.copies,
            "quantize": self.quantize,
            "score_with": self.score_with,
        }
