"""Issue 11, failure 10 and the predict/analyze agreement: the README example runs, the predict table keeps file
names whole, a busy port fails before printing an address, ``stream --realtime`` summarises on Ctrl-C, ``--help``
is plain text with help for every option, summaries say "mixed" when emotions are close, and long-recording
``predict`` answers what ``analyze``'s summary says. All audio is generated here."""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import speech_emotion.cli.stream as stream_cli
from speech_emotion.cli import main as cli_main
from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import Recognizer
from speech_emotion.recording import predict_recording
from speech_emotion.report import MIXED_MARGIN, summarize
from speech_emotion.streaming import SegmentEvent
from speech_emotion.timeline import Timeline, analyze_file
from synth import silence, vowel

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "library.py"


@pytest.fixture(scope="module")
def tiny(tiny_bundle: Path) -> Recognizer:
    return Recognizer.load(tiny_bundle, threads=1)


def talk(sample_rate: int, layout: list[tuple[str, float]]) -> np.ndarray:
    """Silence and voiced stretches (``("v", s)`` / ``("s", s)``); the voice is the same throughout."""
    parts = [
        vowel(s, sample_rate, seed=i) if kind == "v" else silence(s, sample_rate) for i, (kind, s) in enumerate(layout)
    ]
    return np.concatenate(parts)


# -- the README library example ------------------------------------------------------------------------------


def readme_block() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text[text.index("### Library") :]
    block = block[block.index("```python\n") + len("```python\n") :]
    return block[: block.index("```")].splitlines()


def test_readme_library_snippet_is_the_runnable_example():
    example = [line.strip() for line in EXAMPLE.read_text().splitlines()]
    code = [line.strip() for line in readme_block() if line.strip() and not line.startswith("path, model =")]
    missing = [line for line in code if line not in example]
    assert not missing, f"README lines not in {EXAMPLE.name}: {missing}"
    assert "examples/library.py" in (ROOT / "README.md").read_text()


def run_example(path: Path, model: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, str(EXAMPLE), str(path), "--model", str(model)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_library_example_runs_on_48k_audio_with_true_times_and_the_last_utterance(tiny_bundle, tmp_path):
    samples = talk(48000, [("s", 0.5), ("v", 1.5), ("s", 1.5), ("v", 1.5)])  # ends while speaking
    path = tmp_path / "call48k.wav"
    sf.write(path, samples, 48000)
    duration = len(samples) / 48000
    proc = run_example(path, tiny_bundle)
    assert proc.returncode == 0, proc.stderr
    events = [ast.literal_eval(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    segments = [e for e in events if e["type"] == "segment"]
    assert len(segments) == 2  # the second one is only closed by flush()
    assert max(e["end"] for e in events) <= duration + 0.05  # times in seconds of this file, not 3x too long
    assert segments[1]["end"] == pytest.approx(duration, abs=0.3)
    assert "of speech" in proc.stdout.splitlines()[0]


def test_library_example_says_no_speech_in_one_line_and_bad_files_in_one_error_line(tiny_bundle, tmp_path):
    path = tmp_path / "silent.wav"
    sf.write(path, silence(2.0), 16000)
    proc = run_example(path, tiny_bundle)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout == f"{path}: no speech detected (2.0 s of silence or noise)\n"  # and no events
    missing = run_example(tmp_path / "missing.wav", tiny_bundle)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr == f"error: {tmp_path / 'missing.wav'}: no such file\n"


# -- predict table ------------------------------------------------------------------------------------------


def test_predict_table_keeps_long_file_names_whole_at_80_columns(tiny_bundle, tmp_path, monkeypatch, capsys):
    path = tmp_path / ("a_rather_long_customer_call_recording_name_" * 3 + "end.wav")
    sf.write(path, talk(16000, [("s", 0.3), ("v", 1.5), ("s", 0.3)]), 16000)
    monkeypatch.setenv("COLUMNS", "80")
    assert cli_main.main(["predict", str(path), "--model", str(tiny_bundle)]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    cells = [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")]
    assert str(path) in "".join(cells)  # folded over lines, never cut with an ellipsis
    assert "…" not in out


def test_predict_table_at_80_columns_keeps_the_file_column_readable_beside_a_failed_row(tmp_path, monkeypatch, capsys):
    good = tmp_path / "customer_call_0001.wav"  # the default model: its A/V/D column leaves the names least room
    sf.write(good, talk(16000, [("s", 0.3), ("v", 1.5), ("s", 0.3)]), 16000)
    broken = tmp_path / "customer_call_0002.wav"
    broken.write_bytes(b"RIFF....WAVEnot really a wave file at all")
    monkeypatch.setenv("COLUMNS", "80")
    assert cli_main.main(["predict", str(good), str(broken), str(tmp_path / "missing.wav")]) == 1
    out = capsys.readouterr().out
    table = [line for line in out.splitlines() if line[:1] in "┏┃┡│└"]
    assert table[0].count("┳") == 5 and max(map(len, table)) <= 80  # every column, A/V/D last
    assert all(line[-1] in "┓┃┩│┘" for line in table)  # the table's right edge is there: nothing cropped off
    assert "…" not in out
    monkeypatch.setenv("COLUMNS", "40")  # narrower than the table can be, every file failed: still a table
    assert cli_main.main(["predict", str(broken), str(tmp_path / ("missing_" * 8 + ".wav"))]) == 1
    assert capsys.readouterr().out.startswith("┏")  # cropped, not a traceback
    widths = {len(line.split("│")[1]) for line in out.splitlines() if line.startswith("│")}
    assert min(widths) >= 16 + 2  # the failed row's long reason does not squeeze the names to nothing


def test_predict_table_never_crops_an_answer_in_a_narrow_terminal_nor_folds_a_short_header(
    tiny_bundle, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    sf.write("x", talk(16000, [("s", 0.3), ("v", 1.5), ("s", 0.3)]), 16000, format="WAV")  # a one-letter name
    monkeypatch.setenv("COLUMNS", "80")
    assert cli_main.main(["predict", "x", "--model", str(tiny_bundle)]) == 0
    out = capsys.readouterr().out
    assert "┃ file " in out  # the header whole (it stood one letter per line beside a name shorter than it)
    speech = [line.split("│")[5].strip() for line in out.splitlines() if line.startswith("│")]
    assert speech[0].endswith(" s") and len(speech) == 1  # "2.1/2.1 s" on one line, its "s" not folded under it
    monkeypatch.setenv("COLUMNS", "30")  # narrower than any uncropped table: drawn wider, nothing cut
    assert cli_main.main(["predict", "x", "--model", str(tiny_bundle)]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and "%" in out and " s " in out


def test_predict_table_in_a_pipe_keeps_each_name_on_one_line(tiny_bundle, tmp_path, monkeypatch, capsys):
    path = tmp_path / ("a_rather_long_customer_call_recording_name_" * 3 + "end.wav")
    sf.write(path, talk(16000, [("s", 0.3), ("v", 1.5), ("s", 0.3)]), 16000)
    monkeypatch.delenv("COLUMNS", raising=False)  # captured output is not a terminal: rich would assume 80 columns
    assert cli_main.main(["predict", str(path), "--model", str(tiny_bundle)]) == 0
    out = capsys.readouterr().out
    assert any(str(path) in line for line in out.splitlines())


def test_predict_table_shows_names_literally_control_characters_escaped(tiny_bundle, tmp_path, monkeypatch, capsys):
    audio = talk(16000, [("s", 0.3), ("v", 1.5), ("s", 0.3)])
    markup, control = tmp_path / "[bold red]take.wav", tmp_path / "new\nline\x1b[31m.wav"
    for path in (markup, control):
        sf.write(path, audio, 16000, format="WAV")
    monkeypatch.delenv("COLUMNS", raising=False)
    missing = tmp_path / "short.wav"
    assert cli_main.main(["predict", str(markup), str(control), str(missing), "--model", str(tiny_bundle)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(str(markup) in line for line in lines)  # not read as rich markup
    assert any(str(tmp_path / "new\\nline\\x1b[31m.wav") in line for line in lines)  # one row, no escape code
    assert not any("\x1b" in line for line in lines)


def test_predict_table_ctrl_c_still_shows_the_files_already_done(tiny_bundle, tmp_path, monkeypatch, capsys):
    import speech_emotion.cli.predict as predict_cli

    paths = [tmp_path / f"call{i}.wav" for i in range(3)]
    for path in paths:
        sf.write(path, talk(16000, [("s", 0.3), ("v", 1.5), ("s", 0.3)]), 16000)
    real = predict_cli.predict_recording

    def interrupted_on_the_third(path, recognizer):
        if path == paths[2]:
            raise KeyboardInterrupt  # the user gives up on a long list
        return real(path, recognizer)

    monkeypatch.setattr(predict_cli, "predict_recording", interrupted_on_the_third)
    code = cli_main.main(["predict", *map(str, paths), "--model", str(tiny_bundle)])
    captured = capsys.readouterr()
    assert code == 130 and "interrupted" in captured.err
    assert "call0.wav" in captured.out and "call1.wav" in captured.out and "call2.wav" not in captured.out


@pytest.mark.parametrize("ctrl_c", [True, False])
def test_ctrl_c_that_native_code_turns_into_another_error_still_exits_as_interrupted(
    ctrl_c, tiny_bundle, tmp_path, monkeypatch, capsys
):
    """numba's compiler and extension imports swallow a KeyboardInterrupt and fail with their own error (fresh-user
    trial: a traceback ending in ``RuntimeError: no compiled object yet``, exit 1): after a Ctrl-C that error is the
    interrupt; without one it is a real error and is not hidden."""
    import signal

    import speech_emotion.cli.predict as predict_cli

    path = tmp_path / "call.wav"
    sf.write(path, talk(16000, [("s", 0.3), ("v", 1.5), ("s", 0.3)]), 16000)

    def native_code(path, recognizer):
        if ctrl_c:
            try:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(1.0)  # the handler runs here
            except KeyboardInterrupt:
                pass  # swallowed, as a ctypes callback does
        raise RuntimeError("no compiled object yet for <Library '_localmin'>")

    monkeypatch.setattr(predict_cli, "predict_recording", native_code)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a CLI's Ctrl-C, whatever ran before
    try:
        if ctrl_c:
            assert cli_main.main(["predict", str(path), "--model", str(tiny_bundle)]) == 130
            assert "interrupted" in capsys.readouterr().err
        else:
            with pytest.raises(RuntimeError, match="no compiled object"):
                cli_main.main(["predict", str(path), "--model", str(tiny_bundle)])
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # main put it back
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_while_the_command_module_is_imported_is_interrupted_not_a_traceback(monkeypatch, capsys):
    """The command's module is imported before the command runs (numpy, pandas: a second or more on a cold start;
    fresh-user trial: Ctrl-C 0.3 s into ``batch`` printed the import's traceback)."""
    import importlib

    real = importlib.import_module

    def interrupted(name, *args):
        if name.endswith(".batch"):
            raise KeyboardInterrupt
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", interrupted)
    assert cli_main.main(["batch", "folder", "--out", "o"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


# -- -v -----------------------------------------------------------------------------------------------------


def test_python_dash_m_runs_the_command_and_passes_its_exit_status_through():
    from speech_emotion import __version__

    version = subprocess.run([sys.executable, "-m", "speech_emotion", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout == f"speech-emotion {__version__}\n", version.stderr
    misuse = subprocess.run([sys.executable, "-m", "speech_emotion", "predict"], capture_output=True, text=True)
    assert misuse.returncode == 2
    assert "speech-emotion predict: error: the following arguments are required: files" in misuse.stderr


def test_verbose_turns_on_this_packages_debug_lines_not_every_librarys(tiny_bundle, tmp_path, capsys):
    import logging

    path = tmp_path / "x.wav"
    sf.write(path, talk(16000, [("s", 0.3), ("v", 1.5), ("s", 0.3)]), 16000)
    ours, root = logging.getLogger("speech_emotion"), logging.getLogger()
    saved = ours.level, root.level
    try:
        assert cli_main.main(["-v", "predict", str(path), "--model", str(tiny_bundle)]) == 0
        assert ours.isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("numba.core.byteflow").isEnabledFor(logging.DEBUG)  # hundreds of lines otherwise
    finally:
        ours.setLevel(saved[0])
        root.setLevel(saved[1])


# -- serve on a busy port -----------------------------------------------------------------------------------


def test_second_serve_on_a_busy_port_fails_in_one_line_without_printing_an_address(tiny_bundle, capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli_main.main(["serve", "--model", str(tiny_bundle), "--port", str(port)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # no "open http://..." for a server that never ran
    assert captured.err.count("\n") == 1 and f"127.0.0.1:{port}" in captured.err and "in use" in captured.err


# -- stream --realtime and Ctrl-C ---------------------------------------------------------------------------


def test_stream_realtime_ctrl_c_prints_the_summary(tiny_bundle, tmp_path, monkeypatch, capsys):
    path = tmp_path / "demo.wav"
    sf.write(path, talk(16000, [("s", 0.3), ("v", 1.5), ("s", 1.0), ("v", 2.0), ("s", 3.0)]), 16000)
    calls = [0]

    def sleep(seconds: float) -> None:  # the pace of --realtime; the "user" presses Ctrl-C after ~3 s of audio
        calls[0] += 1
        if calls[0] > 30:
            raise KeyboardInterrupt

    monkeypatch.setattr(stream_cli.time, "sleep", sleep)
    monkeypatch.setattr(stream_cli.time, "monotonic", lambda: 0.0)  # always behind: sleep every chunk
    code = cli_main.main(["stream", str(path), "--realtime", "--model", str(tiny_bundle)])
    captured = capsys.readouterr()
    assert code == 130
    assert "interrupted after" in captured.err
    assert re.search(r"demo\.wav: \d+ segments?, [\d.]+ s of speech in 3\.\d s", captured.out)
    assert "mostly" in captured.out or "mixed" in captured.out


# -- --help texts -------------------------------------------------------------------------------------------


def all_subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = cli_main.build_parser(None)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {"speech-emotion": parser, **sub.choices}


@pytest.mark.parametrize("command", list(all_subparsers()))
def test_help_is_plain_text_and_every_option_has_help(command):
    parser = all_subparsers()[command]
    text = parser.format_help()
    assert not re.findall(r"``|:(?:func|class|data|attr|mod|meth|exc):`", text), text
    undocumented = [
        a.option_strings or [a.dest]
        for a in parser._actions
        if a.help is None and not isinstance(a, argparse._SubParsersAction)  # its choices carry the help
    ]
    assert not undocumented


# -- one summary: "mixed" when close ------------------------------------------------------------------------


def segment(i: int, start: float, end: float, probs: dict[str, float]) -> SegmentEvent:
    full = np.array([probs.get(label, 0.0) for label in EMOTIONS])
    best = int(np.argmax(full))
    return SegmentEvent(i, start, end, EMOTIONS[best], float(full[best]), full, EMOTIONS, windows=1)


def test_summary_says_mixed_when_the_top_emotions_are_within_the_margin():
    close = 0.5 * MIXED_MARGIN
    segs = [
        segment(0, 0.0, 2.0, {"angry": 0.5 + close, "sad": 0.5 - close}),
        segment(1, 3.0, 5.0, {"sad": 0.5 + close, "angry": 0.5 - close}),
        segment(2, 6.0, 6.5, {"angry": 0.6, "sad": 0.4}),
    ]
    summary = summarize(Timeline("x", 7.0, 16000, "m", EMOTIONS, segments=segs))
    assert summary["top"] == ["angry", "sad"] and summary["verdict"] == "mixed: angry / sad"
    clear = summarize(Timeline("x", 7.0, 16000, "m", EMOTIONS, segments=[segment(0, 0, 2, {"angry": 0.9, "sad": 0.1})]))
    assert clear["verdict"] == "mostly angry" and clear["top"] == ["angry"]
    assert summarize(Timeline("x", 7.0, 16000, "m", EMOTIONS))["verdict"] == "no speech"


def test_summary_says_mostly_only_for_the_emotion_that_also_has_the_most_speech_time():
    """A longer, less sure angry segment and a shorter, confident sad one: the probabilities favour sad, the time
    angry; "mostly sad" sat above a table giving angry 55 % of the speech (fresh-user trial)."""
    segs = [
        segment(0, 0.0, 1.8, {"angry": 0.42, "sad": 0.3, "calm": 0.28}),
        segment(1, 2.8, 4.25, {"sad": 0.95, "angry": 0.05}),
    ]
    summary = summarize(Timeline("x", 4.5, 16000, "m", EMOTIONS, segments=segs))
    assert summary["dominant"] == "sad" and summary["emotion_share"]["angry"] > summary["emotion_share"]["sad"]
    assert summary["verdict"] == "mixed: sad / angry"


def test_a_verdict_names_at_most_three_emotions():
    """A long recording with flat probabilities was "mixed: happy / sad / surprised / angry / fearful / calm /
    disgust"."""
    from speech_emotion.report import verdict

    assert verdict(["happy", "sad", "angry", "calm"], "sad") == "mixed: happy / sad / angry / ..."
    assert verdict(["happy", "sad", "angry"], "calm") == "mixed: happy / sad / calm / ..."
    assert verdict(["happy", "sad", "angry"], "angry") == "mixed: happy / sad / angry"


def test_summaries_count_in_the_singular_for_one(capsys):
    from rich.console import Console

    from speech_emotion.batch.runner import BatchSummary
    from speech_emotion.cli.batch import print_summary as print_batch_summary
    from speech_emotion.cli.summary import print_summary
    from speech_emotion.words import plural

    assert [plural(n, "segment") for n in (0, 1, 2)] == ["0 segments", "1 segment", "2 segments"]
    one = [segment(0, 0.0, 2.0, {"angry": 0.9, "sad": 0.1})]
    two = [*one, segment(1, 3.0, 5.0, {"angry": 0.9, "sad": 0.1})]
    for segs, said in ((one, "x: 1 segment, "), (two, "x: 2 segments, ")):
        print_summary(Timeline("x", 7.0, 16000, "m", EMOTIONS, segments=segs), Console(width=200), moments=False)
        assert capsys.readouterr().out.startswith(said)
    stream_cli._emit(one[0], jsonl=False, timeline=Timeline("x", 0.0, 16000, "m", EMOTIONS))
    assert capsys.readouterr().out.rstrip().endswith("(1 window)")
    print_batch_summary(BatchSummary(files_total=1, files_skipped=0, files_done=1, workers=1))
    assert "local runner, 1 worker)" in capsys.readouterr().out


# -- long recordings: predict answers what analyze's summary says -------------------------------------------


def test_long_mixed_recording_predict_and_analyze_agree(tiny, tiny_bundle, tmp_path, capsys):
    """Two voices (a low and a high one, which the tiny model labels differently), 24 s: predict goes the segment
    way and must give the label and probabilities of analyze's summary, through the library and the CLI."""
    parts = []
    for i in range(6):
        f0 = 110.0 if i % 2 else 260.0
        parts += [silence(0.8), vowel(2.5 + 0.3 * i, f0=f0, formants=(400.0 + 300 * (i % 2), 1500.0, 2600.0), seed=i)]
    samples = np.concatenate([*parts, silence(1.0)])
    path = tmp_path / "mixed.wav"
    sf.write(path, samples, 16000)
    pred = predict_recording(path, tiny)
    summary = summarize(analyze_file(path, tiny))
    assert pred.segments == summary["segments"] >= 4
    assert pred.label == summary["dominant"]
    for label, p in zip(pred.labels, pred.probabilities):
        assert p == pytest.approx(summary["probabilities"][label], abs=1e-4)
    assert cli_main.main(["predict", str(path), "--json", "--model", str(tiny_bundle)]) == 0
    assert json.loads(capsys.readouterr().out)["label"] == summary["dominant"]
    out = tmp_path / "out"
    assert (
        cli_main.main(["analyze", str(path), "-o", str(out), "--no-plot", "--quiet", "--model", str(tiny_bundle)]) == 0
    )
    doc = json.loads((out / "mixed.timeline.json").read_text())
    assert doc["summary"]["dominant"] == pred.label


def test_error_and_warning_lines_escape_control_characters_in_names(tiny_bundle, tmp_path, capsys):
    missing = tmp_path / "esc\x1b[31mred.wav"
    assert cli_main.main(["predict", str(missing), "--model", str(tiny_bundle)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and f"error: {tmp_path}/esc\\x1b[31mred.wav: no such file" in err


def test_analyze_and_stream_show_names_with_control_characters_escaped(tiny_bundle, tmp_path, capsys):
    path = tmp_path / "esc\x1b[31mred.wav"
    sf.write(path, talk(16000, [("s", 0.3), ("v", 1.5), ("s", 0.3)]), 16000, format="WAV")
    model = ["--model", str(tiny_bundle)]
    cli_main.main(["analyze", *model, "--no-plot", "-o", str(tmp_path / "rep"), str(path)])
    cli_main.main(["stream", *model, str(path)])
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "esc\\x1b[31mred.wav" in captured.out


def test_the_timeline_plot_titles_a_name_literally(tiny_bundle, tmp_path):
    """A control character in a file name is escaped in the plot title (no missing-glyph warnings) and dollar signs
    stay dollar signs (not mathtext, which fails to draw on a name like ``a$\\x$``)."""
    import warnings

    from speech_emotion.recognizer import Recognizer
    from speech_emotion.report import plot_timeline
    from speech_emotion.timeline import analyze_file

    path = tmp_path / "esc\x1b[31m $\\x$ 1.wav"
    sf.write(path, talk(16000, [("s", 0.3), ("v", 1.5), ("s", 0.3)]), 16000, format="WAV")
    timeline = analyze_file(path, Recognizer.load(tiny_bundle, threads=1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = plot_timeline(timeline, tmp_path / "t.png")
    assert png.stat().st_size > 0
