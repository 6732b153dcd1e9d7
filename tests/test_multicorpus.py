"""Several corpora as one: manifest readers, leave-one-corpus-out and mixed actor folds, the masked probe."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from speech_emotion.corpora import load_corpora, load_corpus
from speech_emotion.errors import DataError
from speech_emotion.labels import EMOTIONS, emotion_index
from speech_emotion.training.splits import make_splits
from synth import emotion_clip


def _manifest_corpus(root, name: str, emotions: list[str], speakers: int = 3, per: int = 2) -> None:
    folder = root / name
    rows, folds = [], []
    for s in range(speakers):
        speaker = f"{name}_{s}"
        folds.append(f"{speaker}\t{s + 1}\n")
        for e in emotions:
            for k in range(per):
                rel = f"{speaker}/{e}-{k}.flac"
                (folder / speaker).mkdir(parents=True, exist_ok=True)
                sf.write(folder / rel, emotion_clip(e, seed=s * 10 + k), 16000)
                rows.append(f"{rel}\t{e}\t{speaker}\n")
    (folder / "MANIFEST.tsv").write_text("path\temotion\tspeaker\n" + "".join(rows))
    (folder / "FOLDS.tsv").write_text("speaker\tfold\n" + "".join(folds))


@pytest.fixture
def corpora(tmp_path):
    _manifest_corpus(tmp_path, "alpha", ["happy", "sad", "calm"])
    _manifest_corpus(tmp_path, "beta", ["happy", "sad", "angry"])
    return tmp_path


def test_a_manifest_folder_reads_with_its_corpus_name_and_speaker_folds(corpora):
    table = load_corpus(corpora / "alpha")
    assert len(table) == 3 * 3 * 2
    assert set(table["corpus"]) == {"alpha"}
    assert table.groupby("speaker")["fold"].nunique().eq(1).all()
    assert all(p.endswith(".flac") and (corpora / "alpha").as_posix() in p for p in table["path"])


def test_a_manifest_listing_a_missing_file_is_refused(corpora):
    (corpora / "alpha" / "alpha_0" / "happy-0.flac").unlink()
    with pytest.raises(DataError, match="missing"):
        load_corpus(corpora / "alpha")


def test_leave_one_corpus_out_tests_each_corpus_on_the_emotions_the_others_teach(corpora):
    table = load_corpora([corpora / "alpha", corpora / "beta"])
    splits = {s.name: s for s in make_splits(table, "leave-one-corpus-out")}
    assert set(splits) == {"alpha", "beta"}
    alpha = splits["alpha"]
    assert set(table["corpus"].iloc[alpha.train]) == {"beta"}
    assert set(table["emotion"].iloc[alpha.test]) == {"happy", "sad"}  # no calm in beta
    assert [EMOTIONS[i] for i in np.flatnonzero(alpha.labels)] == ["happy", "sad"]  # alpha's, that beta teaches


def test_leave_one_corpus_out_needs_two_corpora(corpora):
    with pytest.raises(DataError, match="two corpora"):
        make_splits(load_corpora([corpora / "alpha"]), "leave-one-corpus-out")


def test_actor_folds_with_other_corpora_add_them_to_every_training_set_and_never_to_a_test(corpora):
    table = load_corpora([corpora / "alpha", corpora / "beta"])
    splits = make_splits(table, "actor-6fold", corpora / "alpha" / "FOLDS.tsv")
    beta = set(np.flatnonzero(table["corpus"] == "beta"))
    assert len(splits) == 3
    for split in splits:
        assert beta <= set(split.train)
        assert set(table["corpus"].iloc[split.test]) == {"alpha"}
        assert not set(table["speaker"].iloc[split.train]) & set(table["speaker"].iloc[split.test])


def test_the_masked_probe_learns_a_label_only_one_corpus_has_without_unlearning_it_from_the_other():
    from speech_emotion.training.whisper.masked_probe import (
        MaskedProbeOptions,
        balance_weights,
        fit_masked_probe,
    )

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (len(EMOTIONS), 6))
    x, y, corpus = [], [], []
    for name, emotions, n in (("a", ["happy", "sad", "calm"], 40), ("b", ["happy", "sad"], 400)):
        for e in emotions:
            x.append(centres[emotion_index(e)] + rng.normal(0, 1, (n, 6)))
            y += [emotion_index(e)] * n
            corpus += [name] * n
    x, y, corpus = np.concatenate(x), np.array(y), np.array(corpus)
    masks = np.zeros((len(y), len(EMOTIONS)), bool)
    for name, emotions in (("a", ["happy", "sad", "calm"]), ("b", ["happy", "sad"])):
        masks[np.ix_(corpus == name, [emotion_index(e) for e in emotions])] = True
    weights = balance_weights(corpus, y, "corpus")
    assert weights[corpus == "a"].sum() == pytest.approx(weights[corpus == "b"].sum())
    probe = fit_masked_probe(x, y, masks, weights, MaskedProbeOptions(layers=(0,), C=1.0))
    calm = centres[emotion_index("calm")] + rng.normal(0, 1, (50, 6))
    assert (probe.predict_proba(calm).argmax(1) == emotion_index("calm")).mean() > 0.8
    # labels no corpus has are never predicted
    assert probe.predict_proba(rng.normal(0, 5, (200, 6)))[:, emotion_index("disgust")].max() < 1e-6


def test_balance_weights_average_one_and_equalise_classes_within_a_corpus():
    from speech_emotion.training.whisper.masked_probe import balance_weights

    corpus = np.array(["a"] * 30 + ["b"] * 10)
    labels = np.array([0] * 20 + [1] * 10 + [0] * 5 + [1] * 5)
    w = balance_weights(corpus, labels, "corpus")
    assert w.mean() == pytest.approx(1.0)
    for c in "ab":
        for k in (0, 1):
            assert w[(corpus == c) & (labels == k)].sum() == pytest.approx(w.sum() / 4)
    with pytest.raises(ValueError):
        balance_weights(corpus, labels, "speaker")


def test_combined_corpora_keep_speakers_apart_when_two_corpora_use_the_same_ids():
    from speech_emotion.corpora import combine_corpora

    a = pd.DataFrame({"path": ["x.wav"], "emotion": ["sad"], "speaker": ["s1"]})
    b = pd.DataFrame({"path": ["y.wav"], "emotion": ["sad"], "speaker": ["s1"]})
    both = combine_corpora([a, b], ["a", "b"])
    assert both["speaker"].tolist() == ["a:s1", "b:s1"]


def test_mixed_probes_give_the_weighted_sum_of_their_logits_as_one_linear_layer():
    from speech_emotion.training.whisper.masked_probe import MaskedProbeOptions, fit_masked_probe, mix_probes

    rng = np.random.default_rng(1)
    x = rng.normal(3, 2, (300, 5))
    y = (x[:, 0] > 3).astype(int) + 2 * (x[:, 1] > 3)
    masks = np.zeros((len(y), len(EMOTIONS)), bool)
    masks[:, :4] = True  # the training corpus has four emotions
    a = fit_masked_probe(x, y, masks, np.ones(len(y)), MaskedProbeOptions(layers=(0,), C=1.0, masked=False))
    b = fit_masked_probe(x[:, ::-1] ** 2, y, masks, np.ones(len(y)), MaskedProbeOptions(layers=(0,), C=0.1))
    b.mean, b.scale = a.mean * 0.5, a.scale * 2  # another standardisation: the mix must fold each probe's own
    mixed = mix_probes([a, b], [0.25, 0.75])
    expected = 0.25 * a.logits(x) + 0.75 * b.logits(x)
    assert np.allclose(mixed.logits(x), expected, rtol=1e-4, atol=1e-3)
    weight, bias = mixed.folded()
    assert np.allclose(x @ weight.T + bias, expected, rtol=1e-4, atol=1e-3)  # what the exported layer computes
    # labels neither probe learnt stay far below every learnt one
    assert mixed.logits(x)[:, [4, 5, 6, 7]].max() < mixed.logits(x)[:, :4].min() - 1000


def test_the_anchor_option_is_range_checked_in_one_line():
    pytest.importorskip("torch")
    from speech_emotion.errors import ModelError
    from speech_emotion.training.recipes import make_recipe

    with pytest.raises(ModelError, match="anchor.*at most 1"):
        make_recipe("whisper-base-multicorpus", anchor=1.5)
    assert make_recipe("whisper-base-multicorpus", anchor=0.5).describe()["anchor"] == 0.5


def test_merging_positions_is_a_checked_option_with_its_own_statistics_and_old_caches_keep_their_keys():
    pytest.importorskip("torch")
    from speech_emotion.errors import ModelError
    from speech_emotion.training.recipes import make_recipe
    from speech_emotion.training.whisper.pooled import PooledOptions

    assert PooledOptions().cache_key() == "whisper-pooled-7bb6e9a225b1"  # the key of every cache made before it
    assert PooledOptions(merge_after=(1,)).cache_key() != PooledOptions().cache_key()
    for wrong in ([4], [0.5], [True], ["x"], [0, 0], [1, 0], [-1]):  # 0.5 would merge nowhere, under a merged key
        with pytest.raises(ModelError, match="merge_after.*0-3"):
            make_recipe("whisper-base-general", pooled={"merge_after": wrong})
    merged = make_recipe("whisper-base-general", pooled={"merge_after": [1]})
    assert merged.encoder_merge() == (1,) and list(merged.describe()["pooled"]["merge_after"]) == [1]
    assert "merge_after" not in make_recipe("whisper-base-general").describe()["pooled"]  # old folds resume


def test_whole_recording_copies_keep_the_noise_that_fills_the_pauses(tmp_path, monkeypatch):
    from speech_emotion.training import conditions
    from speech_emotion.training.whisper.pooled import PooledOptions, variant_audio

    rng = np.random.default_rng(0)
    speech = emotion_clip("angry", seed=1, duration_s=1.0)
    silence = np.zeros(16000, np.float32)
    path = tmp_path / "clip.wav"
    sf.write(path, np.concatenate([silence, speech, silence]), 16000)

    def noisy_room(x, others, generator):  # the chain: steady noise 10 dB below the speech
        return (x + 0.03 * np.abs(speech).max() * rng.standard_normal(x.size)).astype(np.float32)

    monkeypatch.setattr(conditions, "random_channel", noisy_room)
    trimmed_first = variant_audio(str(path), "d", ("aug1", ()), PooledOptions())
    whole = variant_audio(str(path), "d", ("waug1", ()), PooledOptions())
    assert trimmed_first.size < 1.3 * 16000  # the noise was added to the trimmed clip: pauses already gone
    assert whole.size > 2.5 * 16000  # the noise fills the pauses, so trimming keeps them, as in a noisy recording
