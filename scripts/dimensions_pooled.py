"""Pooled Whisper-base statistics and logits of every clip of some corpora, as the shipped graph computes them.

The dimensional head (arousal, valence, dominance) is a linear layer on the same pooled statistics the
categorical classifier reads (``/Concat_output_0`` in the exported graph: mean and std of encoder blocks 2-4,
3072 values), so it is fitted on exactly what inference computes. Writes one ``.npz`` per corpus (content-keyed
by the manifest, the graph and the preprocessing), reused when present.

    python scripts/dimensions_pooled.py --model whisper-base-general --data ../shared/data/ravdess ... \
        --out ../cache/dims
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from tqdm import tqdm

from speech_emotion.bundle import load_bundle
from speech_emotion.conditioning import prepare
from speech_emotion.corpora import load_corpus
from speech_emotion.errors import AudioError
from speech_emotion.features import build_features

POOLED = "/Concat_output_0"


def session_with_pooled(onnx_path: Path, threads: int) -> ort.InferenceSession:
    """An ONNX Runtime session on ``onnx_path`` that also returns the pooled statistics ``[1, 3072]``."""
    model = onnx.load(str(onnx_path))
    if not any(POOLED in n.output for n in model.graph.node):
        raise SystemExit(f"{onnx_path}: no {POOLED} node (not a pooled-statistics Whisper probe graph)")
    model.graph.output.append(onnx.helper.make_tensor_value_info(POOLED, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="whisper-base-general")
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    bundle = load_bundle(args.model)
    features = build_features(bundle.features, bundle.feature_options)
    session = session_with_pooled(bundle.onnx_path, args.threads)
    graph_sha = hashlib.sha1(bundle.onnx_path.read_bytes()).hexdigest()[:12]
    pre = json.dumps(str(bundle.preprocessing), sort_keys=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for source in args.data:
        folder = Path(source).resolve()
        table = load_corpus(folder)
        key = hashlib.sha1((graph_sha + pre + (folder / "MANIFEST.tsv").read_text()).encode()).hexdigest()[:12]
        target = args.out / f"{folder.name}-{key}.npz"
        if target.is_file():
            print(f"{folder.name}: cached {target}")
            continue
        pooled, logits, ok = [], [], []
        for path in tqdm(table["path"].astype(str), desc=folder.name, mininterval=10):
            try:
                x = features(prepare(path, bundle.preprocessing))[None].astype(np.float32)
            except AudioError:
                ok.append(False)
                continue
            lg, pl = session.run(["logits", POOLED], {"features": x})
            logits.append(lg[0])
            pooled.append(pl[0])
            ok.append(True)
        keep = np.array(ok)
        np.savez_compressed(
            target,
            pooled=np.stack(pooled).astype(np.float32),
            logits=np.stack(logits).astype(np.float32),
            path=table["path"].astype(str).to_numpy()[keep],
            emotion=table["emotion"].astype(str).to_numpy()[keep],
            speaker=table["speaker"].astype(str).to_numpy()[keep],
            fold=table["fold"].astype(str).to_numpy()[keep] if "fold" in table else np.array([]),
        )
        print(f"{folder.name}: {keep.sum()} clips ({(~keep).sum()} refused) -> {target}")


if __name__ == "__main__":
    main()
