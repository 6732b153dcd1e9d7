from __future__ import annotations

import numpy as np
import pytest
import torch

from speech_emotion.training.models import CnnLstm, CnnLstmOptions


@pytest.fixture
def model() -> CnnLstm:
    torch.manual_seed(0)
    m = CnnLstm(CnnLstmOptions(n_features=20, conv_channels=(16, 16), lstm_hidden=8))
    m.set_normalization(torch.randn(20), torch.rand(20) + 0.5)
    return m


def test_forward_gives_one_logit_row_per_clip(model):
    assert model(torch.randn(3, 50, 20)).shape == (3, 8)
    assert model(torch.randn(1, 3, 20)).shape == (1, 8)  # shorter than the pooling


@pytest.mark.parametrize("pooling", ["attention", "mean", "last"])
def test_padded_batch_gives_the_same_logits_as_clips_alone(pooling):
    torch.manual_seed(0)
    model = CnnLstm(CnnLstmOptions(n_features=20, conv_channels=(16, 16), lstm_hidden=8, pooling=pooling)).eval()
    clips = [torch.randn(n, 20) for n in (41, 30, 9)]
    batch = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
    together = model(batch, torch.tensor([41, 30, 9]))
    for i, clip in enumerate(clips):
        torch.testing.assert_close(together[i], model(clip[None])[0], atol=1e-5, rtol=1e-4)


def test_backward_reaches_every_trainable_parameter(model):
    x, y = torch.randn(4, 40, 20), torch.tensor([0, 1, 2, 3])
    torch.nn.functional.cross_entropy(model(x, torch.tensor([40, 33, 20, 12])), y).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_normalization_is_stored_in_the_state_dict(model):
    state = model.state_dict()
    assert {"feature_mean", "feature_std"} <= set(state)
    fresh = CnnLstm(model.options)
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.feature_mean, model.feature_mean)


def test_onnx_export_takes_raw_features_of_any_length(model, tmp_path):
    import onnxruntime as ort

    from speech_emotion.training.export import export_frames_onnx

    model.eval()
    path = export_frames_onnx(model, tmp_path / "m.onnx", n_features=20)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for frames in (17, 240):
        x = np.random.default_rng(frames).normal(size=(1, frames, 20)).astype(np.float32)
        (onnx_logits,) = session.run(None, {"features": x})
        with torch.no_grad():
            np.testing.assert_allclose(onnx_logits, model(torch.from_numpy(x)).numpy(), atol=1e-4)
