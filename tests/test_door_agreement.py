"""scripts/door_agreement.py: the product's answer (predict) against evaluate --model's whole-clip answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from scripts_loader import load_script
from speech_emotion.recognizer import Recognizer
from synth import silence, vowel


def test_a_clip_predict_gives_no_emotion_counts_as_wrong_and_the_argmax_keeps_to_the_corpus_labels() -> None:
    labels = ["neutral", "happy", "sad"]
    rows = pd.DataFrame(
        {
            "actual": ["happy", "happy", "sad", "sad"],
            "predicted": ["happy", "sad", "sad", "sad"],  # whole clip: happy 1/2, sad 2/2 -> UA 75
            "door": [
                np.array([0.9, 0.06, 0.04]),  # neutral is not a label of this corpus: happy
                np.array([0.1, 0.2, 0.7]),
                np.array([0.1, 0.1, 0.8]),
                None,  # no speech found
            ],
        }
    )
    figures = load_script("door_agreement").corpus_figures(rows, labels)
    assert figures["clips"] == 4 and figures["no_answer"] == 1
    assert figures["ua_whole_clip"] == 75.0 and figures["ua_predict"] == 50.0  # happy 1/2, sad 1/2
    assert figures["ua_predict_answered"] == 75.0 and figures["ua_whole_clip_same_clips"] == 75.0
    assert figures["agree_pct"] == 75.0


def test_the_script_runs_each_clip_through_predict_and_writes_its_figures(tiny_bundle: Path, tmp_path: Path) -> None:
    speech, quiet = tmp_path / "speech.wav", tmp_path / "quiet.wav"
    sf.write(speech, np.concatenate([silence(0.3), vowel(1.5, 16000, seed=1), silence(0.3)]), 16000)
    sf.write(quiet, silence(2.0), 16000)
    label = Recognizer.load(tiny_bundle, threads=1).labels[0]
    table = pd.DataFrame({"path": [speech, quiet], "corpus": "c", "actual": label, "predicted": label})
    table.to_csv(tmp_path / "predictions.csv", index=False)
    out = tmp_path / "doors.json"
    script = load_script("door_agreement")
    assert (
        script.main(
            ["--model", str(tiny_bundle), "--predictions", str(tmp_path / "predictions.csv"), "--out", str(out)]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert doc["corpora"]["c"]["clips"] == 2 and doc["corpora"]["c"]["no_answer"] == 1
    assert doc["no_speech_clips"] == [str(quiet)]


def test_bad_inputs_are_one_line_and_a_clip_that_cannot_be_read_stops_the_figures(
    tiny_bundle: Path, tmp_path: Path, capsys
) -> None:
    import pytest

    script = load_script("door_agreement")
    label = Recognizer.load(tiny_bundle, threads=1).labels[0]
    empty, folder, other = tmp_path / "empty.csv", tmp_path / "run", tmp_path / "other.csv"
    empty.write_text("")
    folder.mkdir()
    pd.DataFrame({"path": ["a.wav"], "corpus": "c", "actual": "bored", "predicted": label}).to_csv(other, index=False)
    blank = tmp_path / "blank.csv"
    pd.DataFrame({"path": ["a.wav"], "corpus": "c", "actual": [None], "predicted": label}).to_csv(blank, index=False)
    run = tmp_path / "scored"
    run.mkdir()
    (run / "bundle.json").write_text("{not json")
    pd.read_csv(other).assign(actual=label).to_csv(run / "predictions.csv", index=False)
    cases = ((empty, "not a CSV file"), (folder, "a folder, not a file"), (other, "bored"), (blank, "blank"))
    for predictions, reason in (*cases, (run / "predictions.csv", "not the bundle.json")):
        with pytest.raises(SystemExit) as refused:
            script.main(["--model", str(tiny_bundle), "--predictions", str(predictions)])
        assert refused.value.code == 2 and reason in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # before any clip is scored
        script.main(["--model", str(tiny_bundle), "--predictions", str(other), "--out", str(tmp_path)])
    assert refused.value.code == 2 and "a folder; give a file name" in capsys.readouterr().err
    gone = tmp_path / "gone.csv"
    pd.DataFrame({"path": [tmp_path / "nowhere.wav"], "corpus": "c", "actual": label, "predicted": label}).to_csv(
        gone, index=False
    )
    assert script.main(["--model", str(tiny_bundle), "--predictions", str(gone)]) == 1
    assert "1 of 1 clips could not be read" in capsys.readouterr().err
