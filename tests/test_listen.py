"""``listen`` through a fake sounddevice module: the PortAudio boundary is the only thing faked."""

from __future__ import annotations

import _thread
import json
import signal
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from speech_emotion.cli import listen as listen_mod
from speech_emotion.cli import main as cli_main
from stream_synth import bursts

MIC = {"name": "Fake USB Mic", "max_input_channels": 1, "max_output_channels": 0, "default_samplerate": 48000.0}
SPEAKER = {"name": "Fake Speaker", "max_input_channels": 0, "max_output_channels": 2, "default_samplerate": 48000.0}


class FakePortAudioError(Exception):
    pass


class FakeInputStream:
    def __init__(self, sd, device, channels, samplerate, dtype, blocksize, callback):
        assert channels == 1 and dtype == "float32"
        if sd.fail_open:
            raise FakePortAudioError("Error opening InputStream: Device unavailable [PaErrorCode -9985]")
        self.sd, self.rate, self.blocksize, self.callback = sd, samplerate, blocksize, callback
        self._thread = threading.Thread(target=self._play, daemon=True)

    def _play(self) -> None:
        audio = self.sd.audio_at(self.rate)
        for i in range(0, len(audio), self.blocksize):
            block = audio[i : i + self.blocksize]
            self.callback(block[:, None].copy(), len(block), None, None)
        if self.sd.interrupt_after is not None:
            time.sleep(self.sd.interrupt_after)
            _thread.interrupt_main()  # what Ctrl-C does

    @property
    def active(self) -> bool:  # like PortAudio: active until stopped, unless the device goes away
        return not (self.sd.unplug and not self._thread.is_alive())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        return False


class FakeSoundDevice:
    PortAudioError = FakePortAudioError

    def __init__(self, devices=(MIC, SPEAKER), fail_open=False, interrupt_after=None, unplug=False):
        self.devices = list(devices)
        self.default = SimpleNamespace(device=(0, 1) if devices and devices[0] is MIC else (-1, -1))
        self.fail_open = fail_open
        self.interrupt_after = interrupt_after
        self.unplug = unplug
        self.samples, self.truth = bursts(48000)

    def audio_at(self, rate: int) -> np.ndarray:
        assert rate == 48000
        return self.samples

    def query_devices(self, device=None, kind=None):
        if kind is None and device is None:
            return self.devices
        inputs = [d for d in self.devices if d["max_input_channels"] > 0]
        if device is None:
            if not inputs:
                raise FakePortAudioError("Error querying device -1")
            return inputs[0]
        if isinstance(device, int):
            if device >= len(self.devices):
                raise FakePortAudioError(f"Error querying device {device}")
            return self.devices[device]
        matches = [d for d in inputs if device.lower() in d["name"].lower()]
        if not matches:
            raise ValueError(f"No input device matching {device!r}")
        return matches[0]

    def InputStream(self, **kwargs):  # noqa: N802 - sounddevice's name
        return FakeInputStream(self, **kwargs)


@pytest.fixture
def use_fake(monkeypatch):
    def install(fake: FakeSoundDevice | None) -> FakeSoundDevice | None:
        monkeypatch.setattr(listen_mod, "_import_sounddevice", lambda: fake or listen_mod._import_sounddevice())
        monkeypatch.setattr(cli_main, "COMMANDS", ["listen"])
        return fake

    return install


def test_listen_shows_events_saves_them_and_prints_a_summary(use_fake, tiny_bundle, tmp_path, capsys):
    fake = use_fake(FakeSoundDevice())
    saved = tmp_path / "events.jsonl"
    duration = len(fake.samples) / 48000 - 0.01
    argv = ["listen", "--model", str(tiny_bundle), "--save", str(saved), "--duration", str(duration)]
    argv += ["--block-ms", "200"]  # the fake delivers faster than real time: keep within the block queue
    assert cli_main.main(argv) == 0
    out = capsys.readouterr().out
    assert "speech-emotion listen" in out  # the live panel
    assert "microphone: 3 segments" in out and ("mostly" in out or "mixed" in out)
    events = [json.loads(line) for line in saved.read_text().splitlines()]
    segments = [e for e in events if e["type"] == "segment"]
    assert len(segments) == len(fake.truth)
    for seg, (start, end) in zip(segments, fake.truth):
        assert abs(seg["start"] - start) < 0.2 and abs(seg["end"] - end) < 0.2


@pytest.fixture
def ctrl_c_raises():
    """Python's own SIGINT handler for the test: a shell starting the suite in the background sets SIGINT to
    "ignore", and Python then installs none, so a simulated Ctrl-C would do nothing (the test hung for ever)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_ends_cleanly_with_a_summary(use_fake, tiny_bundle, tmp_path, capsys, ctrl_c_raises):
    use_fake(FakeSoundDevice(interrupt_after=0.3))
    saved = tmp_path / "events.jsonl"
    assert cli_main.main(["listen", "--model", str(tiny_bundle), "--save", str(saved), "--block-ms", "200"]) == 0
    assert "microphone: " in capsys.readouterr().out
    assert all(json.loads(line)["type"] in ("update", "segment") for line in saved.read_text().splitlines())


def test_device_lost_mid_stream_is_reported(use_fake, tiny_bundle, tmp_path, capsys):
    use_fake(FakeSoundDevice(unplug=True))
    saved = tmp_path / "events.jsonl"
    assert cli_main.main(["listen", "--model", str(tiny_bundle), "--save", str(saved), "--block-ms", "200"]) == 1
    assert "the input stream stopped" in capsys.readouterr().err
    assert saved.read_text()  # what was heard before is kept


def test_list_devices_shows_inputs_only(use_fake, capsys):
    use_fake(FakeSoundDevice())
    assert cli_main.main(["listen", "--list-devices"]) == 0
    out = capsys.readouterr().out
    assert "Fake USB Mic" in out and "*" in out and "Speaker" not in out


@pytest.mark.parametrize(
    ("fake", "argv", "expected"),
    [
        (FakeSoundDevice(devices=(SPEAKER,)), [], "no usable default input device"),
        (FakeSoundDevice(), ["--device", "Studio"], "no usable input device 'Studio'"),
        (FakeSoundDevice(), ["--device", "1"], "has no input channels"),
        (FakeSoundDevice(fail_open=True), [], "cannot open input device 'Fake USB Mic'"),
    ],
    ids=["no-input-device", "unknown-name", "output-only", "open-fails"],
)
def test_device_problems_give_one_line_with_a_hint(use_fake, tiny_bundle, capsys, fake, argv, expected):
    use_fake(fake)
    assert cli_main.main(["listen", "--model", str(tiny_bundle), *argv]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err
    assert "--list-devices" in err and err.count("\n") == 1


def test_missing_portaudio_is_explained(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as without PortAudio
    monkeypatch.setattr(cli_main, "COMMANDS", ["listen"])
    assert cli_main.main(["listen"]) == 1
    err = capsys.readouterr().err
    assert "cannot open the microphone" in err and "stream FILE --realtime" in err
