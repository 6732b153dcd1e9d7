"""End-to-end: headless Chromium opens the page, streams a fake microphone (a generated WAV) and shows emotions.

Needs Debian's ``chromium`` and the ``playwright`` Python package (its own browser download is not
used). Skips with the reason where either is missing. ``SPEECH_EMOTION_SCREENSHOT=path`` also saves
the screenshot there (docs/img/web.png); for that screenshot, ``SPEECH_EMOTION_WEB_MODEL`` serves
another model than the tiny test bundle and ``SPEECH_EMOTION_WEB_AUDIO`` (a WAV) replaces the
generated microphone and upload audio.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speech_emotion.labels import EMOTIONS
from speech_emotion.recognizer import Recognizer
from speech_emotion.service.app import create_app
from speech_emotion.service.options import ServiceOptions
from synth import silence, vowel

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); the browser test needs it")
    return path


def speech_wav(path: Path, sample_rate: int = 48000) -> Path:
    """Speech-like vowels with pauses, at 48 kHz so the page's downsampler is exercised."""
    parts = []
    for i, f0 in enumerate((120.0, 210.0, 160.0)):
        parts += [vowel(2.5, sample_rate, f0=f0, seed=i), silence(0.8, sample_rate)]
    sf.write(path, np.concatenate([silence(0.3, sample_rate), *parts]), sample_rate, subtype="PCM_16")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


TOKEN = "browser-test-token-0123456789"


@pytest.fixture
def server(tiny_bundle: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The app on a free loopback port, run by uvicorn in a thread (with a token if parametrized so)."""
    yield from serve(os.environ.get("SPEECH_EMOTION_WEB_MODEL") or tiny_bundle, getattr(request, "param", None))


@pytest.fixture
def default_server() -> Iterator[str]:
    """The app serving the default model (which gives arousal, valence and dominance)."""
    yield from serve(None, None)


def serve(model: Path | str | None, token: str | None) -> Iterator[str]:
    import uvicorn

    options = ServiceOptions(port=free_port(), threads=1, token=token)
    app = create_app(options, Recognizer.load(model, threads=1))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=options.port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the service did not start")
        time.sleep(0.05)
    yield options.page_url
    server.should_exit = True
    thread.join(10)


def launch(pw, executable: str, wav: Path):
    return pw.chromium.launch(
        executable_path=executable,
        headless=True,
        args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={wav}"],
    )


def playwright_api():
    return pytest.importorskip("playwright.sync_api", reason="pip install playwright (the Python package)")


def open_page(browser, url: str, problems: list[str]):
    """A new page on ``url`` once it has loaded its model; console errors and page errors go into ``problems``."""
    page = browser.new_page(viewport={"width": 1280, "height": 1000}, device_scale_factor=1)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url)
    page.wait_for_function("() => document.getElementById('model-chip').textContent !== 'model: …'")
    return page


def test_page_streams_fake_microphone_and_shows_emotions(server: str, tmp_path: Path) -> None:
    executable = chromium_path()
    sync_api = playwright_api()
    wav = Path(os.environ.get("SPEECH_EMOTION_WEB_AUDIO") or speech_wav(tmp_path / "mic.wav"))
    upload = tmp_path / "talk.wav"
    shutil.copy(wav, upload)
    shot = tmp_path / "web.png"
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = launch(pw, executable, wav)
        try:
            page = open_page(browser, server, problems)
            page.click("#start")
            wanted = 24 if os.environ.get("SPEECH_EMOTION_SCREENSHOT") else 6  # a fuller chart for the docs
            page.wait_for_function(f"() => Number(document.body.dataset.updates) >= {wanted}", timeout=90_000)
            label = page.text_content("#emotion-label")
            assert label in EMOTIONS
            assert page.get_attribute("body", "data-state") == "live"
            bars = page.eval_on_selector_all("#bars .bar-value", "els => els.map(e => e.textContent)")
            assert len(bars) == len(EMOTIONS) and all(b.endswith("%") for b in bars)
            if not os.environ.get("SPEECH_EMOTION_WEB_MODEL"):  # the tiny bundle has no dimensions: no such bars
                assert page.locator("#dims").is_hidden()
            page.wait_for_function("() => document.querySelectorAll('#live-segments li').length >= 1", timeout=30_000)
            page.set_input_files("#file", str(upload))
            page.click("#analyse")
            page.wait_for_function("() => document.body.dataset.analysed === '1'", timeout=60_000)
            assert page.locator("#segment-table tbody tr").count() >= 1
            page.screenshot(path=str(shot), full_page=True)
            page.click("#start")  # stop: the stream ends cleanly
            page.wait_for_function("() => document.body.dataset.state === 'idle'", timeout=15_000)
        finally:
            browser.close()
    assert not problems, problems
    assert shot.stat().st_size > 10_000
    if os.environ.get("SPEECH_EMOTION_SCREENSHOT"):
        shutil.copy(shot, os.environ["SPEECH_EMOTION_SCREENSHOT"])


def dimension_values(page, selector: str) -> dict[str, float]:
    """The page's arousal, valence, dominance bars under ``selector``: name -> shown value."""
    rows = page.eval_on_selector_all(
        f"{selector} li", "els => els.map(e => [e.dataset.dimension, e.querySelector('.bar-value').textContent])"
    )
    return {name: float(value) for name, value in rows}


def test_page_shows_arousal_valence_dominance_of_the_default_model_live_and_for_uploads(
    default_server: str, tmp_path: Path
) -> None:
    executable = chromium_path()
    sync_api = playwright_api()
    wav = speech_wav(tmp_path / "mic.wav")
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = launch(pw, executable, wav)
        try:
            page = open_page(browser, default_server, problems)
            page.click("#start")
            page.wait_for_function("() => Number(document.body.dataset.updates) >= 2", timeout=120_000)
            assert page.locator("#dims").is_visible()
            live = dimension_values(page, "#dims")
            assert list(live) == ["arousal", "valence", "dominance"]
            assert all(0.0 <= v <= 1.0 for v in live.values())
            page.click("#start")
            page.wait_for_function("() => document.body.dataset.state === 'idle'", timeout=30_000)
            page.set_input_files("#file", str(wav))
            page.click("#analyse")
            page.wait_for_function("() => document.body.dataset.analysed === '1'", timeout=120_000)
            assert page.locator("#file-dims").is_visible()
            shown = dimension_values(page, "#file-dims")
            assert list(shown) == ["arousal", "valence", "dominance"]
            assert all(0.0 <= v <= 1.0 for v in shown.values())
        finally:
            browser.close()
    assert not problems, problems


@pytest.mark.parametrize("server", [TOKEN], indirect=True)
def test_page_uses_the_token_from_its_address_for_stream_and_upload(server: str, tmp_path: Path) -> None:
    executable = chromium_path()
    sync_api = playwright_api()
    wav = speech_wav(tmp_path / "mic.wav")
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = launch(pw, executable, wav)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(f"{server}#token={TOKEN}")
            page.wait_for_function("() => document.getElementById('model-chip').textContent !== 'model: …'")
            assert TOKEN not in page.url  # removed from the address bar
            assert page.is_hidden("#token-box")
            page.click("#start")
            page.wait_for_function("() => Number(document.body.dataset.updates) >= 1", timeout=60_000)
            page.set_input_files("#file", str(wav))
            page.click("#analyse")
            page.wait_for_function("() => document.body.dataset.analysed === '1'", timeout=60_000)
            assert page.is_hidden("#banner")
        finally:
            browser.close()
    assert not problems, problems


def rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_page_clears_a_failed_uploads_result_says_mixed_and_uses_the_one_palette(server: str, tmp_path: Path) -> None:
    """Issue 21 item 7 and issue 18 item 6: a failed upload clears the previous result, the verdict is the API's
    (``mixed: X / Y``, not always "mostly"), sizes are in MiB as the limit, and colours are the plots' palette."""
    from speech_emotion.report import EMOTION_COLORS

    executable = chromium_path()
    sync_api = playwright_api()
    wav = speech_wav(tmp_path / "talk.wav")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF this is not audio at all" * 10)
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = launch(pw, executable, wav)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(server)
            page.wait_for_function("() => document.getElementById('model-chip').textContent !== 'model: …'")
            assert "MiB" in page.text_content("#upload-limits")
            fills = page.eval_on_selector_all(
                "#bars li", "els => els.map(e => [e.dataset.label, e.querySelector('.bar-fill').style.background])"
            )
            assert fills and all(colour == rgb(EMOTION_COLORS[label]) for label, colour in fills), fills
            page.set_input_files("#file", str(wav))
            assert page.text_content("#drop-text").endswith(" MiB")
            page.click("#analyse")
            page.wait_for_function("() => document.body.dataset.analysed === '1'", timeout=60_000)
            assert page.is_visible("#result")
            page.set_input_files("#file", str(broken))
            page.click("#analyse")
            page.wait_for_function("() => !document.getElementById('banner').hidden", timeout=30_000)
            assert "Analysis failed" in page.text_content("#banner")
            assert page.is_hidden("#result") and page.get_attribute("body", "data-analysed") == "0"
            assert page.locator("#segment-table tbody tr").count() == 0

            def mixed(route) -> None:  # the API's answer for a mixed recording, whatever the tiny model says
                probabilities = {label: 0.0 for label in EMOTIONS} | {"angry": 0.46, "sad": 0.44, "calm": 0.1}
                segment = {"type": "segment", "segment": 0, "start": 0.5, "end": 3.0, "label": "angry"}
                segment.update(confidence=0.46, probabilities=probabilities, windows=3)
                summary = {"duration_s": 4.0, "speech_s": 2.5, "speech_share": 0.625, "segments": 1}
                summary.update(verdict="mixed: angry / sad", top=["angry", "sad"], dominant="angry")
                body = {"source": "upload", "model": "m", "duration_s": 4.0, "sample_rate": 16000}
                note = "file ended early: 4.0 s of the announced 9.0 s were read"
                body.update(labels=list(EMOTIONS), notes=[note], summary=summary, segments=[segment], windows=[])
                route.fulfill(json=body)

            page.route("**/v1/analyze", mixed)
            page.set_input_files("#file", str(wav))
            page.click("#analyse")
            page.wait_for_function("() => document.body.dataset.analysed === '1'", timeout=60_000)
            stats = page.text_content("#stats").lower()
            assert "mixed: angry / sad" in stats and "mostly" not in stats
            assert "file ended early: 4.0 s of the announced 9.0 s were read" in stats  # the notes, as every door
        finally:
            browser.close()
    assert not problems, problems


@pytest.mark.parametrize("server", [TOKEN], indirect=True)
def test_page_reads_a_token_given_later_in_the_address_fragment(server: str, tmp_path: Path) -> None:
    executable = chromium_path()
    sync_api = playwright_api()
    wav = speech_wav(tmp_path / "talk.wav")
    with sync_api.sync_playwright() as pw:
        browser = launch(pw, executable, wav)
        try:
            page = browser.new_page()
            page.goto(server)
            page.wait_for_function("() => document.getElementById('model-chip').textContent !== 'model: …'")
            assert page.is_visible("#token-box")
            page.goto(f"{server}#token={TOKEN}")  # the printed link, opened in the tab already on the page
            page.wait_for_function("() => document.getElementById('token-box').hidden", timeout=10_000)
            assert TOKEN not in page.url
            page.set_input_files("#file", str(wav))
            page.click("#analyse")
            page.wait_for_function("() => document.body.dataset.analysed === '1'", timeout=60_000)
            assert page.is_hidden("#banner")
        finally:
            browser.close()


@pytest.fixture
def unsure_server(tiny_bundle: Path, tmp_path: Path) -> Iterator[str]:
    """The app serving a copy of the tiny bundle whose calibration thresholds call every answer uncertain."""
    import json

    folder = tmp_path / "unsure"
    shutil.copytree(tiny_bundle, folder)
    doc = json.loads((folder / "model.json").read_text())
    doc.update(format=2, features=doc.pop("frontend"), feature_options=doc.pop("frontend_options"), sample_rate=16000)
    doc.update(preprocessing=doc.pop("audio_options"))
    doc["calibration"] = {"method": "temperature", "temperature": 1.0, "thresholds": {"min_confidence": 1.0}}
    (folder / "model.json").write_text(json.dumps(doc))
    yield from serve(folder, None)


def test_page_shows_uncertain_answers_greyed_with_a_mark_live_and_for_uploads(unsure_server: str, tmp_path: Path):
    """Issue 17 item 3: the page says so where the model's calibration thresholds call an answer uncertain."""
    executable = chromium_path()
    sync_api = playwright_api()
    wav = speech_wav(tmp_path / "mic.wav")
    problems: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = launch(pw, executable, wav)
        try:
            page = open_page(browser, unsure_server, problems)
            page.click("#start")
            page.wait_for_function("() => Number(document.body.dataset.updates) >= 2", timeout=90_000)
            label = page.locator("#emotion-label")
            assert label.text_content().endswith("?") and label.text_content()[:-1] in EMOTIONS
            assert "uncertain" in label.get_attribute("class") and label.get_attribute("title").startswith("uncertain")
            assert "uncertain" in page.text_content("#emotion-confidence")
            page.wait_for_function("() => document.querySelectorAll('#live-segments li').length >= 1", timeout=30_000)
            chip = page.locator("#live-segments li").first
            assert "?" in chip.text_content() and "uncertain" in chip.get_attribute("class")
            page.click("#start")
            page.wait_for_function("() => document.body.dataset.state === 'idle'", timeout=15_000)
            page.set_input_files("#file", str(wav))
            page.click("#analyse")
            page.wait_for_function("() => document.body.dataset.analysed === '1'", timeout=60_000)
            stats = page.text_content("#stats")
            assert "(uncertain)" in stats and "100% of speech" in stats
            tags = page.eval_on_selector_all("#segment-table .tag", "els => els.map(e => [e.textContent, e.className])")
            assert tags and all(text.endswith("?") and "uncertain" in cls for text, cls in tags), tags
        finally:
            browser.close()
    assert not problems, problems
