"""A dimensional head: arousal, valence and dominance in [0, 1] from the pooled encoder statistics.

There is no dimensional ground truth in our corpora, so the head learns from what there is:

- **anchors**: every clip's target is the value of its emotion word in the NRC VAD Lexicon v1 (Mohammad, "Obtaining
  Reliable Human Ratings of Valence, Arousal, and Dominance for 20,000 English Words", ACL 2018; best-worst scaling,
  0 = lowest, 1 = highest), rescaled per dimension, piecewise linearly, so that *neutral* is 0.5
  (:data:`LEXICON`, :func:`anchor_targets`);
- **intensity**: RAVDESS says each clip's intensity (normal or strong); for each actor, emotion, statement and
  repetition the strong clip must get a higher arousal than the normal one (a pairwise logistic ranking loss);
- **every corpus**, each clip weighted so that each corpus, and each emotion within it, weighs the same.

The head is one linear layer and a sigmoid on the 3072 pooled values the categorical classifier reads, so it
costs 3 x 3072 multiply-adds per clip and is exported into the same ONNX graph (:func:`add_dimension_output`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bundle import DIMENSIONS, read_bundle, write_bundle

LEXICON: dict[str, tuple[float, float, float]] = {
    "neutral": (0.184, 0.469, 0.357),
    "calm": (0.100, 0.875, 0.282),
    "happy": (0.735, 1.000, 0.772),
    "sad": (0.333, 0.225, 0.149),
    "angry": (0.830, 0.122, 0.604),
    "fearful": (0.482, 0.083, 0.278),
    "disgust": (0.775, 0.052, 0.317),
    "surprised": (0.855, 0.784, 0.539),
}
"""NRC VAD Lexicon v1 (Mohammad 2018) values of the label words, as (arousal, valence, dominance)."""


def _neutral_at_half(value: float, neutral: float) -> float:
    """Piecewise-linear map of [0, 1] onto itself that sends ``neutral`` to 0.5 (monotone: order is kept)."""
    return 0.5 * value / neutral if value <= neutral else 0.5 + 0.5 * (value - neutral) / (1.0 - neutral)


def anchor_targets() -> dict[str, np.ndarray]:
    """Each emotion's target ``(3,)`` (arousal, valence, dominance) in [0, 1], *neutral* at 0.5."""
    neutral = LEXICON["neutral"]
    return {
        emotion: np.array([_neutral_at_half(v, n) for v, n in zip(values, neutral)], dtype=np.float32)
        for emotion, values in LEXICON.items()
    }


def anchor_matrix(emotions: np.ndarray | list[str]) -> np.ndarray:
    """Targets ``(n, 3)`` for an array of emotion names."""
    targets = anchor_targets()
    return np.stack([targets[str(e)] for e in emotions]).astype(np.float32)


@dataclass(frozen=True)
class DimensionHeadOptions:
    """``l2``: weight decay on the standardised weights; ``rank``: weight of the intensity ranking loss;
    ``steps``/``lr``: full-batch Adam steps and learning rate; ``seed``: initialisation."""

    l2: float = 1e-3
    rank: float = 1.0
    steps: int = 400
    lr: float = 0.01
    seed: int = 0


@dataclass(frozen=True)
class DimensionHead:
    """``sigmoid(x @ weight + bias)`` on raw pooled statistics ``x`` ``(n, d)``.

    ``weight`` ``(d, 3)``, ``bias`` ``(3,)``; outputs in :data:`DIMENSIONS` order."""

    weight: np.ndarray
    bias: np.ndarray

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Arousal, valence, dominance ``(n, 3)`` in [0, 1]."""
        return 1.0 / (1.0 + np.exp(-(np.asarray(x, np.float64) @ self.weight + self.bias)))


def balanced_weights(corpus: np.ndarray, emotion: np.ndarray) -> np.ndarray:
    """Per-clip weights ``(n,)`` with mean 1: every corpus weighs the same, and every emotion within it."""
    corpus, emotion = np.asarray(corpus), np.asarray(emotion)
    w = np.zeros(len(corpus))
    names = np.unique(corpus)
    for name in names:
        mine = corpus == name
        labels = np.unique(emotion[mine])
        for label in labels:
            cell = mine & (emotion == label)
            w[cell] = 1.0 / (len(names) * len(labels) * cell.sum())
    return w * len(w)


def fit_dimension_head(
    x: np.ndarray,
    targets: np.ndarray,
    weights: np.ndarray,
    pairs: np.ndarray,
    options: DimensionHeadOptions = DimensionHeadOptions(),
) -> DimensionHead:
    """Fit the head on pooled statistics ``x`` ``(n, d)`` against ``targets`` ``(n, 3)`` (weighted squared error,
    per-clip ``weights`` ``(n,)``) plus the ranking loss on ``pairs`` ``(m, 2)`` of row indices (strong, normal):
    ``softplus(-(arousal[strong] - arousal[normal]) / 0.05)`` scaled by ``options.rank``. Needs PyTorch."""
    import torch

    torch.manual_seed(options.seed)
    mean = x.mean(0)
    std = x.std(0) + 1e-6
    z = torch.tensor((x - mean) / std, dtype=torch.float32)
    t = torch.tensor(targets, dtype=torch.float32)
    w = torch.tensor(weights, dtype=torch.float32)[:, None]
    p = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
    linear = torch.nn.Linear(x.shape[1], len(DIMENSIONS))
    torch.nn.init.zeros_(linear.weight)
    with torch.no_grad():
        linear.bias.copy_(torch.logit(t.mean(0).clamp(0.01, 0.99)))
    opt = torch.optim.Adam(linear.parameters(), lr=options.lr, weight_decay=0.0)
    for _ in range(options.steps):
        opt.zero_grad()
        out = torch.sigmoid(linear(z))
        loss = (w * (out - t) ** 2).mean() + options.l2 * (linear.weight**2).sum()
        if len(p) and options.rank > 0:
            gap = out[p[:, 0], 0] - out[p[:, 1], 0]
            loss = loss + options.rank * torch.nn.functional.softplus(-gap / 0.05).mean() * 0.05
        loss.backward()
        opt.step()
    weight = linear.weight.detach().numpy().T.astype(np.float64) / std[:, None]
    bias = linear.bias.detach().numpy().astype(np.float64) - mean @ weight
    return DimensionHead(weight=weight, bias=bias)


def intensity_pairs(paths: np.ndarray) -> np.ndarray:
    """Row pairs ``(m, 2)`` (strong, normal) of RAVDESS clips (``03-01-EE-II-SS-RR-AA`` names) of the same actor,
    emotion, statement and repetition; other names are ignored."""
    keys: dict[tuple[str, ...], dict[str, int]] = {}
    for row, path in enumerate(paths):
        parts = Path(str(path)).stem.split("-")
        if len(parts) != 7 or parts[0] != "03":
            continue
        keys.setdefault((parts[2], parts[4], parts[5], parts[6]), {})[parts[3]] = row
    return np.array([[k["02"], k["01"]] for k in keys.values() if "01" in k and "02" in k], dtype=np.int64).reshape(
        -1, 2
    )


def add_dimension_output(source: Path, target: Path, head: DimensionHead, pooled: str = "/Concat_output_0") -> Path:
    """Copy the ONNX graph ``source`` to ``target`` with a second output ``dimensions`` ``[1, 3]`` (arousal,
    valence, dominance) = ``Sigmoid(pooled @ weight + bias)`` on the graph's pooled statistics node."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    if not any(pooled in n.output for n in graph.node):
        raise ValueError(f"{source}: no node output {pooled!r} to attach the dimensional head to")
    if any(o.name == "dimensions" for o in graph.output):
        raise ValueError(f"{source}: the graph already has a 'dimensions' output")
    graph.initializer.extend(
        [
            numpy_helper.from_array(head.weight.astype(np.float32), "dimensions.weight"),
            numpy_helper.from_array(head.bias.astype(np.float32), "dimensions.bias"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("MatMul", [pooled, "dimensions.weight"], ["dimensions_matmul"], name="/dimensions/MatMul"),
            helper.make_node(
                "Add", ["dimensions_matmul", "dimensions.bias"], ["dimensions_logits"], name="/dimensions/Add"
            ),
            helper.make_node("Sigmoid", ["dimensions_logits"], ["dimensions"], name="/dimensions/Sigmoid"),
        ]
    )
    graph.output.append(helper.make_tensor_value_info("dimensions", TensorProto.FLOAT, [1, len(DIMENSIONS)]))
    onnx.checker.check_model(model)
    onnx.save(model, str(target))
    return target


def attach_dimension_head(
    bundle_dir: Path, head: DimensionHead, provenance: dict, pooled: str = "/Concat_output_0"
) -> Path:
    """Add the head to the bundle in ``bundle_dir`` in place: its graph gets the ``dimensions`` output on node output
    ``pooled`` (:func:`add_dimension_output`) and its ``model.json`` declares it, with ``provenance`` (data, anchors,
    options) under ``metadata.dimensions``. Returns the ``model.json`` path. Raises :class:`ValueError` when the
    bundle already has the output."""
    from dataclasses import replace

    bundle = read_bundle(bundle_dir)
    tmp = bundle.onnx_path.with_suffix(".dimensions.onnx")
    add_dimension_output(bundle.onnx_path, tmp, head, pooled)
    tmp.replace(bundle.onnx_path)
    metadata = {**bundle.metadata, "dimensions": provenance}
    return write_bundle(bundle_dir, replace(bundle, dimensions=DIMENSIONS, metadata=metadata))
