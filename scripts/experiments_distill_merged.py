"""Distilling the encoder into one that runs on half the positions (experiment; issues 19 and 17):

    python scripts/experiments_distill_merged.py \
        --train ../shared/data/ravdess ../shared/data/ased ../corpora/esd-0020 ../corpora/emospeech-cmd \
        --held-out ../shared/data/emovo ../corpora/nemo ../corpora/es-students \
        --merge-after 0 --steps 1600 --out ../runs/distill/m0

Averaging neighbouring positions in pairs after the embedding (``merge_after`` 0) halves the cost of the blocks
above, but a probe trained on the merged encoder's statistics loses 2-4 UA points on corpora it has not heard
(docs/experiments.md). Here the merged encoder (the *student*, started from Whisper-base's own weights) is taught
to reproduce the statistics the shipped probes read, those of the unmerged encoder (the *teacher*): per layer
2-4, the mean and standard deviation over frames, each dimension scaled by its spread over the training clips.
No labels are used, so nothing emotion- or corpus-specific is learnt beyond what the teacher's statistics carry,
and the probes stay exactly as they are trained today.

Training views: random windows of 1-3 s of the training corpora's preprocessed clips (one length per batch),
loudness-normalised like a live window; a third with a speed change (0.9 or 1.1), a third with white noise at
5-30 dB SNR. Adam(W), cosine schedule with warm-up, a fixed number of steps (never chosen on held-out audio).

Scored on the held-out corpora, whose audio the student never heard: on every clean clip, the statistics' scaled
error against the teacher and, for a probe fitted on the *teacher's* statistics of the training corpora (the
``whisper-base-multicorpus`` probe: masked per-corpus softmax, corpus and class balance, C 0.03), UA over each
corpus's own labels with the teacher's and with the student's statistics, and how often the two agree. Step 0 is
the merged encoder before distillation.

Writes ``log.jsonl`` (training loss and seconds every 50 steps; the scores at each evaluation) and
``student.pt`` (an OpenAI-format encoder checkpoint: ``"pooled": {"weights": ..., "merge_after": [0]}`` in the
recipes' options reads it).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

from speech_emotion.conditioning import SAMPLE_RATE, AudioOptions, normalize_loudness, prepare, resample
from speech_emotion.corpora import load_corpora
from speech_emotion.errors import AudioError
from speech_emotion.features.logmel import log_mel
from speech_emotion.labels import emotion_index
from speech_emotion.training.whisper.checkpoint import load_encoder_state, save_openai_encoder
from speech_emotion.training.whisper.encoder import WhisperEncoder
from speech_emotion.training.whisper.masked_probe import (
    MaskedProbeOptions,
    balance_weights,
    corpus_label_masks,
    fit_masked_probe,
    restricted_argmax,
    select_stats,
)
from speech_emotion.training.whisper.pooled import PooledOptions, PooledStore
from speech_emotion.training.whisper.research.tuning import unweighted_accuracy

LAYERS = (2, 3, 4)
AUDIO = AudioOptions()


def _prepare(path: str) -> np.ndarray | None:
    if not path:
        return None
    try:
        return prepare(path, AUDIO)
    except AudioError:
        return None


def statistics(encoder: WhisperEncoder, mel: torch.Tensor) -> torch.Tensor:
    """``(batch, len(LAYERS) * 2 * width)``: per layer, mean then std over frames (as :func:`select_stats`)."""
    states = encoder(mel, layers=LAYERS)
    parts = []
    for h in states:
        mean = h.mean(1)
        parts += [mean, (h - mean[:, None]).pow(2).mean(1).sqrt()]
    return torch.cat(parts, 1)


def view(samples: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample window of ``samples`` (after an optional speed change), optional white noise,
    loudness-normalised."""
    if rng.random() < 1 / 3:
        speed = float(rng.choice([0.9, 1.1]))
        changed = resample(samples, SAMPLE_RATE, round(SAMPLE_RATE / speed))
        if changed.size >= n:
            samples = changed
    start = int(rng.integers(0, samples.size - n + 1))
    x = samples[start : start + n].astype(np.float32)
    if rng.random() < 1 / 3:
        snr = rng.uniform(5, 30)
        power = float(np.mean(x.astype(np.float64) ** 2))
        x = x + rng.standard_normal(n).astype(np.float32) * np.float32(math.sqrt(power / 10 ** (snr / 10)))
    return normalize_loudness(x, AUDIO.target_rms_dbfs, AUDIO.peak_limit)


def bundle_statistics(bundle: str, paths: np.ndarray) -> np.ndarray:
    """``(len(paths), 6 * width)``: the pooled statistics a Whisper-probe bundle's graph feeds its heads
    (``/Concat_output_0``), through ONNX Runtime on one thread, of each clip prepared as the product does."""
    import onnx
    import onnxruntime as ort

    from speech_emotion.bundle import load_bundle

    graph = onnx.load(str(load_bundle(bundle).onnx_path))
    graph.graph.output.append(onnx.helper.make_tensor_value_info("/Concat_output_0", onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rows = []
    for path in paths:
        mel = log_mel(prepare(path, AUDIO), PooledOptions().logmel)[None].astype(np.float32)
        rows.append(session.run(["/Concat_output_0"], {name: mel})[0][0])
    return np.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", required=True, help="corpora whose audio the student learns from")
    parser.add_argument("--held-out", nargs="+", required=True, help="corpora scored, never heard")
    parser.add_argument("--merge-after", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1600)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument(
        "--start-step",
        type=int,
        default=0,
        help="resume a stopped run: with --init its student checkpoint at this step, the schedule goes on from here "
        "(fresh optimizer moments, warmed up again over --warmup steps; new random windows); no step-0 scoring",
    )
    parser.add_argument("--seconds", type=float, nargs=2, default=(1.0, 3.0), help="window length range")
    parser.add_argument("--eval-every", type=int, default=400)
    parser.add_argument("--eval-clips", type=int, default=200, help="per held-out corpus, between the first and last")
    parser.add_argument("--cache", default=None, help="pooled-statistics cache (default: SPEECH_EMOTION_CACHE)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--init", default=None, help="start the student from this checkpoint (with --steps 0: score it)"
    )
    parser.add_argument(
        "--reference-bundle",
        default=None,
        help="no training: score the pooled statistics of this bundle's graph (e.g. the shipped int8 default, whose "
        "encoder the probes were not trained on either) against the teacher's, the same way, on every held-out clip",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)  # draws the held-out sample scored between the first and last steps, then windows
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    def log(record: dict) -> None:
        print(json.dumps(record), flush=True)
        with (out / "log.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")

    corpus = load_corpora([*args.train, *args.held_out])
    names = corpus["corpus"].to_numpy()
    held = {Path(p).resolve().name for p in args.held_out}
    y_all = np.array([emotion_index(e) for e in corpus["emotion"]])
    masks = corpus_label_masks(corpus)
    paths = corpus["path"].astype(str).to_numpy()

    # the teacher's statistics of every clean clip (cached by the recipes' runs) and the probe fitted on them
    teacher_stats = PooledStore(PooledOptions(cache_dir=args.cache)).stats(corpus, np.arange(len(corpus)), "clean")
    usable = np.isfinite(teacher_stats).all(axis=(1, 2, 3))
    x_teacher = select_stats(teacher_stats, LAYERS).astype(np.float32)
    tr = np.flatnonzero(usable & ~np.isin(names, list(held)))
    te = np.flatnonzero(usable & np.isin(names, list(held)))
    scale = torch.from_numpy(x_teacher[tr].std(0) + 1e-6)
    options = MaskedProbeOptions(layers=LAYERS, C=0.03)
    m_tr = np.stack([masks[names[r]] for r in tr])
    probe = fit_masked_probe(
        x_teacher[tr], y_all[tr], m_tr, balance_weights(names[tr], y_all[tr], options.balance), options
    )

    def scores(rows: np.ndarray, xs: np.ndarray) -> dict:
        """Scaled error of ``xs`` against the teacher's statistics of ``rows``, and UA of the teacher-fitted probe on
        each, with how often the two agree, per held-out corpus."""
        z_t, z_s = probe.logits(x_teacher[rows]), probe.logits(xs)
        record: dict = {
            "clips": len(rows),
            "scaled_mse": round(float(np.mean(((xs - x_teacher[rows]) / scale.numpy()) ** 2)), 4),
        }
        for name in sorted(held):
            sel = names[rows] == name
            p_t = restricted_argmax(z_t[sel], masks[name])
            p_s = restricted_argmax(z_s[sel], masks[name])
            y = y_all[rows][sel]
            record[name] = {
                "ua_teacher": round(100 * unweighted_accuracy(y, p_t), 1),
                "ua_student": round(100 * unweighted_accuracy(y, p_s), 1),
                "agree": round(100 * float(np.mean(p_t == p_s)), 1),
            }
        return record

    if args.reference_bundle:
        log({"reference": args.reference_bundle, **scores(te, bundle_statistics(args.reference_bundle, paths[te]))})
        return

    needed = paths if args.steps else np.where(np.isin(np.arange(len(paths)), te), paths, "")
    with ProcessPoolExecutor(2) as pool:  # with --steps 0 only the held-out clips are read
        audio = list(pool.map(_prepare, needed, chunksize=32))
    train_audio = [audio[r] for r in tr if audio[r] is not None]
    lengths = np.array([a.size for a in train_audio])
    log(
        {
            "train_clips": len(train_audio),
            "held_out_clips": len(te),
            "hours": round(lengths.sum() / SAMPLE_RATE / 3600, 2),
        }
    )

    state = load_encoder_state()
    teacher = WhisperEncoder.from_state(state, 4).eval()
    student = WhisperEncoder.from_state(load_encoder_state(args.init) if args.init else state, 4, (args.merge_after,))
    for p in teacher.parameters():
        p.requires_grad_(False)
    tuned = [p for i, block in enumerate(student.layers) if i >= args.merge_after for p in block.parameters()]
    for p in student.parameters():
        p.requires_grad_(False)
    for p in tuned:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(tuned, lr=args.lr, weight_decay=0.0)

    def lr_at(step: int) -> float:
        warm = min(1.0, (step - args.start_step + 1) / args.warmup)
        if step < args.warmup:
            return args.lr * warm
        cosine = 0.5 * (1 + math.cos(math.pi * (step - args.warmup) / max(1, args.steps - args.warmup)))
        return args.lr * cosine * warm

    sample = np.concatenate([rng.permutation(te[names[te] == name])[: args.eval_clips] for name in sorted(held)])
    if args.start_step:  # the same sample as the run resumed, other windows than its first steps
        rng = np.random.default_rng([0, args.start_step])

    def evaluate(step: int) -> None:
        student.eval()
        t0 = time.time()
        rows = te if step in (0, args.steps) else np.sort(sample)
        xs = np.zeros((len(rows), x_teacher.shape[1]), np.float32)
        with torch.inference_mode():
            for i, r in enumerate(rows):
                mel = torch.from_numpy(log_mel(audio[r], PooledOptions().logmel)[None])
                xs[i] = statistics(student, mel)[0].numpy()
        log({"step": step, **scores(rows, xs), "seconds": round(time.time() - t0)})
        if args.steps:
            save_openai_encoder(student.state_dict(), out / "student.pt")
        student.train()

    if not args.start_step:
        evaluate(0)
    student.train()
    losses: list[float] = []
    t0 = time.time()
    for step in range(args.start_step + 1, args.steps + 1):
        n = int(rng.uniform(*args.seconds) * SAMPLE_RATE)
        pool_rows = np.flatnonzero(lengths >= n)
        if pool_rows.size < args.batch:
            n, pool_rows = int(np.median(lengths)), np.flatnonzero(lengths >= int(np.median(lengths)))
        picks = rng.choice(pool_rows, args.batch, replace=False)
        mel = torch.from_numpy(np.stack([log_mel(view(train_audio[i], n, rng), PooledOptions().logmel) for i in picks]))
        with torch.no_grad():
            target = statistics(teacher, mel)
        loss = (((statistics(student, mel) - target) / scale) ** 2).mean()
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step - 1)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(tuned, 1.0)
        optimizer.step()
        losses.append(loss.item())
        if step % 50 == 0:
            log({"step": step, "loss": round(float(np.mean(losses[-50:])), 4), "seconds": round(time.time() - t0)})
        if step % args.eval_every == 0 or step == args.steps:
            evaluate(step)


if __name__ == "__main__":
    main()
