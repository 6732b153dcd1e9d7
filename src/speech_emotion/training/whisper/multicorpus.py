"""The ``whisper-base-multicorpus`` recipe: the Whisper-base probe trained for audio it has not heard.

Same network as ``whisper-base-probe`` (first 4 Whisper-base blocks frozen, mean and std of blocks 2-4,
one linear layer; same ONNX size and cost), trained differently:

- on every corpus given (``--data`` several times), with a softmax over each clip's own corpus labels
  and corpus- and class-balanced loss weights (:mod:`.masked_probe`);
- on recording-chain copies of each training clip (rooms, microphones, noise and babble, phone lines and
  codecs: :func:`~speech_emotion.training.conditions.random_channel`);
- on 1-2 s crops of clips and of their copies: the windows the live engine classifies;
- with ``anchor`` > 0, its logits are mixed with those of an *anchor* probe trained the first recipe's way (plain
  softmax, every clip weighing 1, the clip and its speed/noise copies) on the ``anchor_corpora`` rows: the
  shipped default (``whisper-base-general``) weighs the anchor 0.75 and this probe 0.25, which keeps the anchor
  corpus's clean accuracy while the multi-corpus probe carries the robustness (docs/experiments.md). Two linear
  probes mixed are one linear layer: the exported graph is the same size and cost;
- with ``dimensions``, it also fits the dimensional head (arousal, valence, dominance; :mod:`..dimensions`) on the
  training rows' clean statistics and exports it as the graph's ``dimensions`` output, so ``evaluate`` scores it on
  the test speakers or the held-out corpus.
"""

from __future__ import annotations

import re
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...conditioning import AudioOptions
from ...errors import ModelError
from ...features.logmel import LogMelOptions
from ...labels import emotion_index
from ..options import Allowed, checked_value, options_from
from .masked_probe import (
    MaskedProbeOptions,
    balance_weights,
    corpus_label_masks,
    fit_masked_probe,
    mix_probes,
    select_stats,
)
from .pooled import PooledOptions, PooledStore
from .probe import LinearProbe
from .recipe import QUANTIZE, SCORE_WITH, ExportedProbe, check_choice

TRAIN_VARIANTS = ("clean", "aug1", "aug2", "crop1", "crop2", "augcrop1")
"""What the probe learns from, per training clip (see :mod:`.pooled`)."""
ANCHOR_VARIANTS = ("clean", "sn1", "sn2")
"""What the anchor probe learns from: the first recipe's training data (clip + 2 speed/white-noise copies)."""


def check_variants(recipe: str, variants: Any) -> tuple[str, ...]:
    """``variants`` as a tuple; :class:`ModelError` unless a non-empty list of :mod:`.pooled` training variants."""
    pattern = re.compile(r"(clean|(aug|augcrop|waug|waugcrop|crop|sn)[1-9][0-9]*)")
    if not isinstance(variants, (list, tuple)) or not variants:
        raise ModelError(f"{recipe}: option 'variants' must be a non-empty list, got {variants!r}")
    for variant in variants:
        if not isinstance(variant, str) or not pattern.fullmatch(variant):
            raise ModelError(
                f"{recipe}: unknown variant {variant!r} in option 'variants' "
                "(clean, aug<k>, augcrop<k>, waug<k>, waugcrop<k>, crop<k>, sn<k>; k from 1)"
            )
    return tuple(variants)


class MultiCorpusProbeRecipe(ExportedProbe):
    """Masked-softmax linear probe on pooled Whisper-base statistics of clips, channel copies and crops.

    ``variants``: the training variants per clip; ``anchor``: weight (0-1) of the anchor probe's logits in the
    mix (0: no anchor probe); ``anchor_corpora``: the corpora it is trained on (all training rows when none of
    them is in the training data, as when leave-one-corpus-out holds it out); ``score_with``: ``torch`` scores
    test rows from cached statistics, ``onnx`` / ``onnx-int8`` export the bundle and score through the recognizer.
    """

    name = "whisper-base-multicorpus"

    def __init__(
        self,
        probe: Any = None,
        pooled: Any = None,
        variants: tuple[str, ...] | list[str] = TRAIN_VARIANTS,
        anchor: float = 0.0,
        anchor_corpora: tuple[str, ...] | list[str] = ("ravdess",),
        quantize: str = "int8",
        score_with: str = "torch",
        dimensions: bool = False,
    ) -> None:
        check_choice(self.name, "quantize", quantize, QUANTIZE)
        check_choice(self.name, "score_with", score_with, SCORE_WITH)
        self.probe_options = options_from(MaskedProbeOptions, probe, "probe")
        self.pooled_options = options_from(PooledOptions, pooled, "pooled")
        self.variants = check_variants(self.name, variants)
        top = self.pooled_options.layers
        if not self.probe_options.layers or not all(0 <= i <= top for i in self.probe_options.layers):
            raise ModelError(
                f"{self.name}: option 'probe.layers' must list states 0-{top} (pooled.layers {top}), "
                f"got {list(self.probe_options.layers)}"
            )
        merge = self.pooled_options.merge_after
        whole = all(isinstance(k, int) and not isinstance(k, bool) for k in merge)
        if not whole or not all(0 <= k < top for k in merge) or list(merge) != sorted(set(merge)):
            raise ModelError(
                f"{self.name}: option 'pooled.merge_after' must list layers 0-{top - 1} in increasing order (whole "
                f"numbers; pooled.layers {top}), got {list(merge)}"
            )
        self.anchor = checked_value("anchor", anchor, 0.0, Allowed(low=0.0, high=1.0))
        self.anchor_corpora = checked_value("anchor_corpora", anchor_corpora, ("ravdess",))
        self.quantize = quantize
        self.score_with = score_with
        self.dimensions = checked_value("dimensions", dimensions, False)
        self.dimension_head: Any = None
        self._dimensions_fitted_on: dict[str, int] = {}
        self.probe = None
        self._store: PooledStore | None = None
        self._workdir: Path | None = None

    @property
    def store(self) -> PooledStore:
        if self._store is None:
            self._store = PooledStore(self.pooled_options)
        return self._store

    def fit(self, corpus: pd.DataFrame, train: np.ndarray, val: np.ndarray, workdir: Path) -> list[dict]:
        rows = np.concatenate([np.asarray(train, int), np.asarray(val, int)])
        masks = corpus_label_masks(corpus)
        names = corpus["corpus"].astype(str).to_numpy() if "corpus" in corpus else np.full(len(corpus), "corpus")
        y = np.array([emotion_index(e) for e in corpus["emotion"].to_numpy()[rows]])
        layers = self.probe_options.layers
        x = np.concatenate([select_stats(self.store.stats(corpus, rows, v), layers) for v in self.variants])
        finite = np.isfinite(x).all(axis=1)  # a copy the preprocessing refused (too short once cropped, silent)
        x = x[finite]
        y_all = np.tile(y, len(self.variants))[finite]
        groups = np.tile(names[rows], len(self.variants))[finite]
        allowed = np.stack([masks[g] for g in groups])
        weights = balance_weights(groups, y_all, self.probe_options.balance)
        probe = fit_masked_probe(x, y_all, allowed, weights, self.probe_options)
        if self.anchor > 0:
            probe = mix_probes([self._anchor_probe(corpus, rows, names), probe], [self.anchor, 1 - self.anchor])
        self.keep(probe, workdir, rows)
        if self.dimensions:
            self.dimension_head = self._dimension_head(corpus, rows, names)
            corpora, counts = np.unique(names[rows], return_counts=True)
            self._dimensions_fitted_on = {str(c): int(n) for c, n in zip(corpora, counts)}
        return []

    def _dimension_head(self, corpus: pd.DataFrame, rows: np.ndarray, names: np.ndarray) -> Any:
        """The dimensional head fitted on the clean statistics of ``rows`` (:func:`..dimensions.fit_dimension_head`:
        label anchors, corpus- and emotion-balanced weights, RAVDESS strong/normal pairs)."""
        from ..dimensions import anchor_matrix, balanced_weights, fit_dimension_head, intensity_pairs

        x = select_stats(self.store.stats(corpus, rows, "clean"), self.probe_options.layers)
        emotions = corpus["emotion"].to_numpy()[rows]
        pairs = intensity_pairs(corpus["path"].astype(str).to_numpy()[rows])
        return fit_dimension_head(x, anchor_matrix(emotions), balanced_weights(names[rows], emotions), pairs)

    def predict_dimensions(self, corpus: pd.DataFrame, rows: np.ndarray) -> np.ndarray | None:
        """Arousal, valence, dominance ``(len(rows), 3)`` of ``rows`` from their clean statistics (``None`` without
        ``dimensions``)."""
        if self.dimension_head is None:
            return None
        stats = self.store.stats(corpus, np.asarray(rows, int), "clean")
        return self.dimension_head(select_stats(stats, self.probe_options.layers))

    def export(self, bundle_dir: Path, quantize: str | None = None) -> None:
        """The probe's bundle (:meth:`ExportedProbe.export`), with the ``dimensions`` output when fitted."""
        super().export(bundle_dir, quantize)
        if self.dimension_head is not None:
            from ..dimensions import attach_dimension_head

            provenance = {"fitted_on": self._dimensions_fitted_on, "recipe": self.describe()}
            attach_dimension_head(Path(bundle_dir), self.dimension_head, provenance)

    def _anchor_probe(self, corpus: pd.DataFrame, rows: np.ndarray, names: np.ndarray) -> LinearProbe:
        """The first recipe's probe (plain softmax, unweighted, clip + speed/noise copies) on the anchor rows."""
        if not set(self.anchor_corpora) & set(names):
            raise ModelError(
                f"{self.name}: option 'anchor_corpora' names none of the corpora given "
                f"({', '.join(sorted(set(names)))}), got {list(self.anchor_corpora)}"
            )
        own = rows[np.isin(names[rows], self.anchor_corpora)]
        rows = own if own.size else rows
        layers = self.probe_options.layers
        x = np.concatenate([select_stats(self.store.stats(corpus, rows, v), layers) for v in ANCHOR_VARIANTS])
        finite = np.isfinite(x).all(axis=1)
        x = x[finite]
        y = np.tile([emotion_index(e) for e in corpus["emotion"].to_numpy()[rows]], len(ANCHOR_VARIANTS))[finite]
        masks = corpus_label_masks(corpus)
        allowed = np.stack([masks[g] for g in np.tile(names[rows], len(ANCHOR_VARIANTS))[finite]])
        options = replace(self.probe_options, masked=False, balance="none")
        return fit_masked_probe(x, y, allowed, np.ones(len(y)), options)

    def usable(self, corpus: pd.DataFrame) -> np.ndarray:
        """``(len(corpus),)`` bool: the clips the preprocessing accepts (their clean statistics are finite; a clip
        too short or silent once trimmed has NaN statistics). Computes and caches the clean statistics."""
        stats = self.store.stats(corpus, np.arange(len(corpus)), "clean")
        return np.isfinite(stats).all(axis=(1, 2, 3))

    def predict_proba(self, corpus: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        if self.probe is None:
            raise ModelError(f"{self.name}: fit() must run before predict_proba()")
        if self.score_with == "torch":
            stats = self.store.stats(corpus, np.asarray(rows, int), "clean")
            return self.probe.predict_proba(select_stats(stats, self.probe_options.layers))
        return self.score_exported(corpus, rows)

    def encoder_source(self) -> tuple[str | None, AudioOptions, LogMelOptions]:
        return self.pooled_options.weights, self.pooled_options.audio, self.pooled_options.logmel

    def encoder_merge(self) -> tuple[int, ...]:
        return self.pooled_options.merge_after

    def describe(self) -> dict[str, Any]:
        """Options as plain data (for metrics.json and model.json)."""
        pooled = asdict(self.pooled_options)
        pooled.pop("cache_dir", None)
        if not pooled["merge_after"]:  # absent when off: folds from before it resume
            del pooled["merge_after"]
        return {
            "probe": asdict(self.probe_options),
            "pooled": pooled,
            "variants": list(self.variants),
            "anchor": self.anchor,
            "anchor_corpora": list(self.anchor_corpora),
            "quantize": self.quantize,
            "score_with": self.score_with,
            **({"dimensions": True} if self.dimensions else {}),  # absent when off: folds from before it resume
        }


class GeneralProbeRecipe(MultiCorpusProbeRecipe):
    """The default model's recipe: :class:`MultiCorpusProbeRecipe` with its logits mixed 1:3 with those of the first
    recipe's probe on RAVDESS (``anchor`` 0.75). Chosen among anchor weights 0, 0.25, 0.5, 0.75 and 1 as the one that
    keeps clean RAVDESS accuracy within half a point of the first recipe while gaining on every channel, on 1-2 s
    windows and on unseen corpora (``scripts/experiments_multicorpus.py --blend old final``, docs/experiments.md)."""

    name = "whisper-base-general"

    def __init__(
        self,
        probe: Any = None,
        pooled: Any = None,
        variants: tuple[str, ...] | list[str] = TRAIN_VARIANTS,
        anchor: float = 0.75,
        anchor_corpora: tuple[str, ...] | list[str] = ("ravdess",),
        quantize: str = "int8",
        score_with: str = "torch",
        dimensions: bool = False,
    ) -> None:
        super().__init__(probe, pooled, variants, anchor, anchor_corpora, quantize, score_with, dimensions)
