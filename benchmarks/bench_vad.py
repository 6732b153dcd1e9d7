"""Speech or not: how often the voice-activity detector calls generated non-speech speech, and how much
real speech it finds clean, under white noise and at low levels under hiss; plus its CPU cost.

Uses only the public ``speech_emotion.vad.speech_segments`` and ``StreamOptions().min_segment_s`` (the
shortest segment that gets an emotion), so the same script measures any version of the detector:

    python benchmarks/bench_vad.py --clips 200                             # this checkout
    PYTHONPATH=/path/to/old/src python benchmarks/bench_vad.py --clips 200 # another version ("before")
    python benchmarks/bench_vad.py --vad noise_target_dbfs=-45 threshold=0.4   # other VadOptions

(a) Non-speech, generated: pure tones, DTMF-like dual tones, mains hum with harmonics, white/pink/brown
noise, plucked chords and a melody, 8 s each at several levels. Printed per family: the fraction of
audio inside speech segments, the fraction of files that would get an emotion (any segment at
least ``min_segment_s`` long; ``predict`` answers "no speech" for the others), and the highest speech
probability of any frame (the margin to the threshold; n/a for a detector without probabilities).

(a2) Non-speech, recorded (``--real DIR``: every audio file in DIR, e.g. the music, animal sounds and room noises
that ``scripts/build_nonspeech.sh`` extracts from public repositories): per file, the same three figures.

(b) Speech: ``--clips`` clips per corpus (a fixed random subset, seed 0) under each condition. Printed:
the fraction of clips with any speech found, the fraction that would get an emotion, and the fraction
of speech time found. Speech time is measured against a reference that does not depend on any
detector: the 32 ms frames of the clean clip within 30 dB of its loudest frame.

(c) CPU seconds per hour of audio (median of 5 runs over 60 s of corpus speech; one core).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from speech_emotion.streaming import StreamOptions
from speech_emotion.vad import FrameClassifier, VadOptions, speech_segments

SR = 16000
FRAME = 512


def db(level: float) -> float:
    return 10 ** (level / 20)


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SR)) / SR


def tone(freq: float, level: float, seconds: float = 8.0) -> np.ndarray:
    return db(level) * np.sin(2 * np.pi * freq * _t(seconds))


def dual_tone(f1: float, f2: float, level: float, seconds: float = 8.0) -> np.ndarray:
    """Two tones keyed 120 ms on / 80 ms off, like DTMF digits."""
    t = _t(seconds)
    return db(level) * 0.5 * (np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t)) * ((t % 0.2) < 0.12)


def hum(f0: float, level: float, seconds: float = 8.0, harmonics: int = 8) -> np.ndarray:
    t = _t(seconds)
    x = sum(np.sin(2 * np.pi * f0 * h * t + h) / h for h in range(1, harmonics + 1))
    return db(level) * x / np.max(np.abs(x))


def coloured_noise(kind: str, level: float, seconds: float = 8.0, seed: int = 0) -> np.ndarray:
    """White, pink (1/f power) or brown (1/f^2 power) noise at RMS ``level`` dBFS."""
    n = int(seconds * SR)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    x = np.fft.irfft(spec * {"white": 1.0, "pink": f**-0.5, "brown": f**-1.0}[kind], n)
    return db(level) * x / np.sqrt(np.mean(x**2))


def _pluck(freq: float, seconds: float, seed: int) -> np.ndarray:
    """Karplus-Strong plucked string."""
    n, p = int(seconds * SR), int(SR / freq)
    buf = np.random.default_rng(seed).uniform(-1, 1, p)
    out = np.zeros(n)
    for start in range(0, n, p):
        m = min(p, n - start)
        out[start : start + m] = buf[:m]
        buf = 0.996 * 0.5 * (buf + np.roll(buf, -1))
    return out


def plucked_chords(level: float, seconds: float = 8.0) -> np.ndarray:
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9, 293.7)]
    parts = [sum(_pluck(f, 1.0, 3 * i + j) for j, f in enumerate(chords[i % 4])) for i in range(int(seconds))]
    x = np.concatenate(parts)
    return db(level) * x / np.max(np.abs(x))


def melody(level: float, seconds: float = 8.0) -> np.ndarray:
    notes = [440, 494, 523, 587, 659, 587, 523, 494]
    t = _t(0.25)
    parts = [
        np.exp(-3 * t) * sum(np.sin(2 * np.pi * notes[i % 8] * h * t) / h**1.5 for h in range(1, 6))
        for i in range(int(seconds / 0.25))
    ]
    x = np.concatenate(parts)
    return db(level) * x / np.max(np.abs(x))


def non_speech() -> dict[str, list[np.ndarray]]:
    """Families of generated non-speech, each a list of 8 s signals."""
    return {
        "pure tones (200 Hz-3 kHz; -6/-20/-40 dBFS)": [
            tone(f, lv) for f in (200, 440, 1000, 3000) for lv in (-6, -20, -40)
        ],
        "DTMF-like dual tones (-12/-30 dBFS)": [
            dual_tone(a, b, lv) for a, b in ((697, 1209), (852, 1336), (941, 1477)) for lv in (-12, -30)
        ],
        "hum 50/60/100 Hz + 7 harmonics (-20/-40 dBFS)": [hum(f, lv) for f in (50, 60, 100) for lv in (-20, -40)],
        "white/pink/brown noise (-20/-40 dBFS RMS)": [
            coloured_noise(k, lv, seed=i) for i, k in enumerate(("white", "pink", "brown")) for lv in (-20, -40)
        ],
        "synthetic music: plucked chords, melody (-6/-20 dBFS)": [
            g(lv) for g in (plucked_chords, melody) for lv in (-6, -20)
        ],
    }


def corpus_clips(root: Path, count: int) -> list[np.ndarray]:
    with open(root / "MANIFEST.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    pick = np.random.default_rng(0).choice(len(rows), min(count, len(rows)), replace=False)
    return [sf.read(root / rows[i]["path"], dtype="float32")[0] for i in sorted(pick)]


def read_16k(path: Path) -> np.ndarray:
    """A recording as mono float32 at 16 kHz (the mean of its channels, resampled with soxr)."""
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return (soxr.resample(x, rate, SR) if rate != SR else x).astype(np.float32)


def white(n: int, rms: float, seed: int) -> np.ndarray:
    return rms * np.random.default_rng(seed).standard_normal(n)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


CONDITIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "clean": lambda x, s: x,
    "white noise, SNR 20 dB": lambda x, s: x + white(len(x), _rms(x) * db(-20), s),
    "white noise, SNR 10 dB": lambda x, s: x + white(len(x), _rms(x) * db(-10), s),
    "white noise, SNR 5 dB": lambda x, s: x + white(len(x), _rms(x) * db(-5), s),
    "white noise, SNR 0 dB": lambda x, s: x + white(len(x), _rms(x) * db(0), s),
    "peak -30 dBFS, no noise": lambda x, s: x / np.max(np.abs(x)) * db(-30),
    "peak -30 dBFS + hiss -50 dBFS": lambda x, s: x / np.max(np.abs(x)) * db(-30) + white(len(x), db(-50), s),
    "peak -30 dBFS + hiss -46 dBFS": lambda x, s: x / np.max(np.abs(x)) * db(-30) + white(len(x), db(-46), s),
    "peak -45 dBFS + hiss -60 dBFS": lambda x, s: x / np.max(np.abs(x)) * db(-45) + white(len(x), db(-60), s),
}


def highest_probability(x: np.ndarray, options: VadOptions) -> float | None:
    """The detector's highest frame probability on ``x``, or None for a detector without probabilities."""
    classifier = FrameClassifier(options)
    if not hasattr(classifier, "probabilities"):
        return None
    f = options.frame_length
    return float(np.max(classifier.probabilities(x[: len(x) // f * f].reshape(-1, f))))


def reference_frames(clean: np.ndarray) -> np.ndarray:
    n = len(clean) // FRAME
    level = 20 * np.log10(np.maximum(np.sqrt(np.mean(clean[: n * FRAME].reshape(n, FRAME) ** 2, axis=1)), 1e-10))
    return level >= level.max() - 30


def covered(segments: list[tuple[float, float]], frames: int) -> np.ndarray:
    mid = (np.arange(frames) + 0.5) * FRAME / SR
    out = np.zeros(frames, dtype=bool)
    for s, e in segments:
        out |= (mid >= s) & (mid < e)
    return out


def _parse(current: object, text: str) -> object:
    if isinstance(current, bool):
        return text.lower() in ("1", "true", "yes")
    return type(current)(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200, help="clips per corpus")
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument(
        "--corpora", nargs="*", default=["ravdess", "ased", "emovo"], help="names under --data, or corpus folders"
    )
    parser.add_argument("--real", type=Path, default=None, help="a folder of recorded non-speech audio files")
    parser.add_argument(
        "--conditions", nargs="*", default=list(CONDITIONS), choices=list(CONDITIONS), help="(b)'s conditions (all)"
    )
    parser.add_argument(
        "--preroll", type=float, default=0.0, help="seconds of digital silence put before every input (an experiment)"
    )
    parser.add_argument("--skip-speech", action="store_true")
    parser.add_argument("--vad", nargs="*", default=[], metavar="FIELD=VALUE", help="VadOptions fields to override")
    args = parser.parse_args()
    min_seg = StreamOptions().min_segment_s
    options = StreamOptions().vad
    if args.vad:
        fields = {k: _parse(getattr(options, k), v) for k, v in (item.split("=", 1) for item in args.vad)}
        options = dataclasses.replace(options, **fields)
        print(f"VadOptions overrides: {fields}")

    silence = np.zeros(int(args.preroll * SR), np.float32)

    def segments_of(x: np.ndarray) -> list[tuple[float, float]]:
        """The detector's segments of ``x`` (after ``--preroll`` s of silence, their times shifted back)."""
        return [(s - args.preroll, e - args.preroll) for s, e in speech_segments(np.concatenate([silence, x]), options)]

    def emotion(segments: list[tuple[float, float]]) -> bool:
        return any(e - s >= min_seg - 1e-9 for s, e in segments)

    print("(a) generated non-speech, 8 s files")
    print(f"| {'family':55s} | files | audio called speech | files that get an emotion | highest probability |")
    print(f"|{'-' * 57}|------:|--------------------:|--------------------------:|--------------------:|")
    for family, signals in non_speech().items():
        speech_s = total_s = got = 0.0
        highest = []
        for x in signals:
            seg = segments_of(x.astype(np.float32))
            speech_s += sum(e - s for s, e in seg)
            total_s += len(x) / SR
            got += emotion(seg)
            highest.append(highest_probability(x.astype(np.float32), options))
        top = "n/a" if None in highest else f"{max(highest):.2f}"
        share, files = speech_s / total_s, got / len(signals)
        print(f"| {family:55s} | {len(signals):5d} | {share:19.1%} | {files:25.1%} | {top:>19s} |")

    if args.real is not None:
        files = sorted(p for p in args.real.iterdir() if p.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3"))
        print(f"\n(a2) recorded non-speech: {len(files)} files in {args.real}")
        print(f"| {'file':55s} | seconds | audio called speech | gets an emotion | highest probability |")
        print(f"|{'-' * 57}|--------:|--------------------:|----------------:|--------------------:|")
        got = 0
        for path in files:
            x = read_16k(path)
            seg = segments_of(x)
            got += emotion(seg)
            top = highest_probability(x, options)
            share = sum(e - s for s, e in seg) / (len(x) / SR)
            yes = "yes" if emotion(seg) else "no"
            print(f"| {path.name[:55]:55s} | {len(x) / SR:7.1f} | {share:19.1%} | {yes:>15s} | {top or 0:19.2f} |")
        print(f"files that get an emotion: {got} of {len(files)}")

    clips: list[np.ndarray] = []
    if not args.skip_speech:
        for name in args.corpora:
            if (args.data / name / "MANIFEST.tsv").is_file():
                clips += corpus_clips(args.data / name, args.clips)
        print(f"\n(b) speech: {len(clips)} clips ({args.clips} per corpus of {', '.join(args.corpora)})")
        print(f"| {'condition':32s} | clips with speech | clips that get an emotion | speech time found |")
        print(f"|{'-' * 34}|------------------:|--------------------------:|------------------:|")
        for cond, make in ((c, CONDITIONS[c]) for c in args.conditions):
            anyf = emo = 0
            found = total = 0
            for i, clean in enumerate(clips):
                x = np.clip(make(clean, i), -1, 1).astype(np.float32)
                seg = segments_of(x)
                ref = reference_frames(clean)
                anyf += bool(seg)
                emo += emotion(seg)
                found += int((covered(seg, len(ref)) & ref).sum())
                total += int(ref.sum())
            n = max(len(clips), 1)
            print(f"| {cond:32s} | {anyf / n:17.1%} | {emo / n:25.1%} | {found / max(total, 1):17.1%} |")

    audio = np.concatenate(clips)[: 60 * SR] if clips else coloured_noise("pink", -20, 60.0)
    audio = audio.astype(np.float32)
    times = []
    for _ in range(5):
        t0 = time.process_time()
        speech_segments(audio, options)
        times.append(time.process_time() - t0)
    per_hour = float(np.median(times)) * 3600 / (len(audio) / SR)
    print(f"\n(c) CPU: {per_hour:.1f} s per hour of audio (median of 5 runs over {len(audio) / SR:.0f} s)")


if __name__ == "__main__":
    main()
