r"""A bundle of a shipped Whisper-probe model with its encoder replaced by a distilled one (experiment; issue 19).

The student of ``scripts/experiments_distill_merged.py`` reproduces the statistics the shipped heads read, so the
heads are kept as they are: the probe's linear layer and the dimensional head are read from ``--model``'s graph
(float initializers ``linear.weight_Transposed``, ``linear.bias``, ``dimensions.weight``, ``dimensions.bias``;
for a static int8 bundle they already hold its bias correction) and put after the student encoder, which merges
neighbouring positions after ``--merge-after``. The result is a float bundle with ``--model``'s preprocessing,
log-mel options, calibration (temperature, thresholds) and dimensional provenance; ``scripts/quantize_bundle.py
--mode static --conv`` makes the int8 form, as for the shipped default::

    python scripts/distilled_bundle.py --model whisper-base-7corpora --student ../runs/distill/m0/student.pt \
        --merge-after 0 --name whisper-base-7corpora-m0 --out ../runs/distill/bundle-float
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from speech_emotion.bundle import load_bundle, read_bundle, write_bundle
from speech_emotion.training.dimensions import DimensionHead, attach_dimension_head
from speech_emotion.training.whisper.checkpoint import load_encoder_state
from speech_emotion.training.whisper.encoder import WhisperEncoder
from speech_emotion.training.whisper.export import export_whisper
from speech_emotion.training.whisper.probe import LinearProbe, ProbeClassifier, ProbeOptions


def heads(path: Path) -> dict[str, np.ndarray]:
    """The float head initializers of a Whisper-probe graph."""
    wanted = {"linear.weight_Transposed", "linear.weight", "linear.bias", "dimensions.weight", "dimensions.bias"}
    found = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer if t.name in wanted}
    if "linear.weight" not in found and "linear.weight_Transposed" in found:
        found["linear.weight"] = found.pop("linear.weight_Transposed").T
    if "linear.weight" not in found or "linear.bias" not in found:
        raise SystemExit(f"{path}: no float linear head (linear.weight, linear.bias) in the graph")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="the shipped bundle whose heads are kept")
    parser.add_argument(
        "--student", default=None, help="the distilled encoder (OpenAI-format .pt; default: Whisper-base itself)"
    )
    parser.add_argument("--merge-after", type=int, nargs="*", default=[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    shipped = load_bundle(args.model)
    layers = tuple(shipped.metadata.get("recipe", {}).get("probe", {}).get("layers", (2, 3, 4)))
    found = heads(shipped.onnx_path)
    probe = LinearProbe(ProbeOptions(layers=layers))
    probe.coef, probe.intercept = found["linear.weight"].astype(np.float32), found["linear.bias"].astype(np.float32)
    probe.mean = np.zeros(probe.coef.shape[1], np.float32)
    probe.scale = np.ones(probe.coef.shape[1], np.float32)
    encoder = WhisperEncoder.from_state(load_encoder_state(args.student), max(layers), tuple(args.merge_after))
    classifier = ProbeClassifier(encoder, layers, [probe]).eval()
    out = Path(args.out)
    metadata = {
        "recipe": shipped.metadata.get("recipe"),
        "distilled": {
            "heads_from": shipped.name,
            "student": str(args.student),
            "merge_after": list(args.merge_after),
            "method": "scripts/experiments_distill_merged.py: the merged encoder taught the unmerged one's pooled "
            "statistics (layers 2-4, mean and std), no labels",
        },
    }
    export_whisper(out, classifier, args.name, shipped.preprocessing, shipped.feature_options, "none", metadata)
    if "dimensions.weight" in found:
        head = DimensionHead(found["dimensions.weight"], found["dimensions.bias"])
        attach_dimension_head(out, head, dict(shipped.metadata.get("dimensions", {})))
    bundle = read_bundle(out)
    write_bundle(out, replace(bundle, calibration=shipped.calibration))
    print(f"{out}: {args.name} (heads of {shipped.name}, encoder {args.student}, merged after {args.merge_after})")


if __name__ == "__main__":
    main()
