"""The model bundle contract: a folder with ``model.json`` and the ONNX graph it names.

:class:`ModelBundle` is the typed form of ``model.json``; :func:`read_bundle` is its only reader and
:func:`write_bundle` its only writer. Every missing, unknown or inconsistent field is a
:class:`~speech_emotion.errors.ModelError` whose one line names the bundle file and the field.

Every model reads 16 kHz audio (:data:`~speech_emotion.conditioning.SAMPLE_RATE`, a constant, not a setting): format 2
(written now) states it once (``"sample_rate": 16000``) and any other value is a :class:`ModelError` naming the
field; the preprocessing and feature options are stored without it::

    {"format": 2, "name": "...", "labels": [...], "sample_rate": 16000,
     "features": "librosa" | "whisper-logmel", "feature_options": {...},
     "preprocessing": {...}, "onnx": "model.onnx", "metadata": {"recipe": {...}, ...},
     "calibration": {...},  # optional: temperature and uncertainty thresholds, see speech_emotion.calibration
     "dimensions": ["arousal", "valence", "dominance"]}  # optional: the graph's second output, each in [0, 1]

Format 1 (the bundles shipped before, no ``format`` key) is read as well: ``frontend``/``frontend_options``/
``audio_options`` for ``features``/``feature_options``/``preprocessing``, ``recipe`` and ``quantization``
as metadata; the ``sample_rate`` its audio and front-end options may hold must be 16000.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .calibration import Calibration, parse_calibration
from .conditioning import SAMPLE_RATE, AudioOptions
from .errors import ModelError
from .features import FEATURES, AnyFeatureOptions, feature_options
from .labels import EMOTIONS

FORMAT_VERSION = 2
"""The ``model.json`` format :func:`write_bundle` writes; :func:`read_bundle` reads 1 and 2."""

DEFAULT_MODEL = "default"
"""Name of the bundled model used when none is given (an alias, see :func:`available_models`)."""

_V1_KEYS = {"name", "labels", "frontend", "frontend_options", "audio_options", "onnx"}
_V1_METADATA = {"recipe", "quantization"}
_ONLY_RATE = f"must be {SAMPLE_RATE} (every model reads {SAMPLE_RATE // 1000} kHz audio)"
_V2_KEYS = {"format", "name", "labels", "sample_rate", "features", "feature_options", "preprocessing", "onnx"}
_V2_OPTIONAL = {"metadata", "calibration", "dimensions"}
DIMENSIONS = ("arousal", "valence", "dominance")
"""The continuous outputs a bundle may declare (its graph's ``dimensions`` output ``[1, 3]``, in this order)."""


@dataclass(frozen=True)
class ModelBundle:
    """One model bundle, validated.

    ``labels``: class names in the order of the ONNX graph's ``logits``; ``features``: a name in
    :data:`speech_emotion.features.FEATURES` with its options dataclass;
    ``preprocessing``: the :class:`~speech_emotion.conditioning.AudioOptions` applied before the features;
    ``onnx``: the graph's file name inside the bundle folder; ``metadata``: free-form provenance (recipe, quantization).
    """

    name: str
    labels: tuple[str, ...]
    features: str
    feature_options: AnyFeatureOptions
    preprocessing: AudioOptions
    onnx: str = "model.onnx"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    calibration: Calibration | None = None
    """Temperature and uncertainty thresholds applied to the logits (:mod:`speech_emotion.calibration`)."""
    dimensions: tuple[str, ...] = ()
    """:data:`DIMENSIONS` when the graph also outputs ``dimensions`` ``[1, 3]`` (arousal, valence, dominance in
    [0, 1], 0.5 neutral), else empty."""
    format: int = field(default=FORMAT_VERSION, compare=False)
    """The ``model.json`` format it was read from (not part of equality: the same model in either format)."""
    folder: Path | None = field(default=None, compare=False)
    """The folder it was read from (``None`` for a bundle not read from disk)."""

    @property
    def sample_rate(self) -> int:
        """Rate (Hz) of the preprocessed audio the features read: always 16000
        (:data:`~speech_emotion.conditioning.SAMPLE_RATE`)."""
        return SAMPLE_RATE

    @property
    def onnx_path(self) -> Path:
        """The ONNX graph's path (needs :attr:`folder`)."""
        if self.folder is None:
            raise ModelError(f"{self.name}: bundle has no folder")
        return self.folder / self.onnx

    def to_json(self) -> dict[str, Any]:
        """The format-2 ``model.json`` document."""
        feature_opts = asdict(self.feature_options)
        preprocessing = asdict(self.preprocessing)
        return {
            "format": FORMAT_VERSION,
            "name": self.name,
            "labels": list(self.labels),
            "sample_rate": SAMPLE_RATE,
            "features": self.features,
            "feature_options": feature_opts,
            "preprocessing": preprocessing,
            "onnx": self.onnx,
            "metadata": dict(self.metadata),
            **({"calibration": self.calibration.to_json()} if self.calibration else {}),
            **({"dimensions": list(self.dimensions)} if self.dimensions else {}),
        }


def make_bundle(
    name: str,
    features: str,
    feature_options: AnyFeatureOptions,
    preprocessing: AudioOptions = AudioOptions(),
    metadata: Mapping[str, Any] | None = None,
    labels: tuple[str, ...] = EMOTIONS,
    onnx: str = "model.onnx",
) -> ModelBundle:
    """A :class:`ModelBundle` for a freshly trained model (its audio is 16 kHz: the one rate)."""
    return ModelBundle(
        name=name,
        labels=tuple(labels),
        features=features,
        feature_options=feature_options,
        preprocessing=preprocessing,
        onnx=onnx,
        metadata=dict(metadata or {}),
    )


def write_bundle(folder: str | Path, bundle: ModelBundle) -> Path:
    """Write ``bundle`` as ``folder/model.json`` (format 2) beside its ONNX graph; returns ``folder``.

    The only writer of ``model.json``; the document is read back through :func:`read_bundle`'s checks
    (:class:`ModelError` when the ONNX file is not in ``folder`` yet or a field is invalid).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.json"
    _parse(bundle.to_json(), path)  # validate before writing
    path.write_text(json.dumps(bundle.to_json(), indent=2) + "\n")
    return folder


def read_bundle(path: str | Path) -> ModelBundle:
    """The validated bundle in folder ``path`` (or the ``model.json`` file ``path``).

    Raises :class:`ModelError` (``"<model.json path>: <field>: <reason>"``) for unreadable JSON, a missing,
    unknown or ill-typed field, labels that are not distinct known emotions, a sample rate other than 16000, or a
    missing ONNX file.
    """
    path = Path(path)
    json_path = path if path.name == "model.json" else path / "model.json"
    try:
        text = json_path.read_text()
    except OSError as exc:
        raise ModelError(f"{json_path}: cannot read ({exc.strerror or exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{json_path}: not valid JSON ({exc})") from None
    return _parse(doc, json_path)


def _parse(doc: Any, json_path: Path) -> ModelBundle:
    def fail(field_name: str, reason: str) -> ModelError:
        return ModelError(f"{json_path}: {field_name}: {reason}")

    if not isinstance(doc, dict):
        raise fail("model.json", "must be a JSON object")
    version = doc.get("format", 1)
    if version not in (1, 2):
        raise fail("format", f"unsupported version {version!r} (this release reads 1 and 2)")
    if version == 1:
        allowed, features_key, options_key, preprocessing_key = (
            _V1_KEYS | _V1_METADATA,
            "frontend",
            "frontend_options",
            "audio_options",
        )
    else:
        allowed, features_key, options_key, preprocessing_key = (
            _V2_KEYS | _V2_OPTIONAL,
            "features",
            "feature_options",
            "preprocessing",
        )
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise fail(unknown[0], f"unknown field (known: {', '.join(sorted(allowed))})")
    required = ["name", "labels", features_key] + (["sample_rate"] if version == 2 else [])
    for key in required:
        if key not in doc:
            raise fail(key, "missing")

    name = doc["name"]
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "must be a non-empty string")
    labels = doc["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise fail("labels", "must be a non-empty list of emotion names")
    strange = [x for x in labels if x not in EMOTIONS]
    if strange:
        raise fail("labels", f"unknown emotion {strange[0]!r} (known: {', '.join(EMOTIONS)})")
    if len(set(labels)) != len(labels):
        raise fail("labels", "names repeat")

    features = doc[features_key]
    if features not in FEATURES:
        raise fail(features_key, f"unknown features {features!r} (known: {', '.join(sorted(FEATURES))})")
    raw_features = _mapping(doc.get(options_key, {}), options_key, fail)
    raw_preprocessing = _mapping(doc.get(preprocessing_key, {}), preprocessing_key, fail)

    if version == 2:
        for key, raw in ((options_key, raw_features), (preprocessing_key, raw_preprocessing)):
            if "sample_rate" in raw:
                raise fail(f"{key}.sample_rate", "the sample rate belongs in the top-level sample_rate only")
        _check_rate(doc["sample_rate"], "sample_rate", fail)
    else:  # format 1 stored the rate in both option blocks
        for key, raw in ((options_key, raw_features), (preprocessing_key, raw_preprocessing)):
            if "sample_rate" in raw:
                _check_rate(raw["sample_rate"], f"{key}.sample_rate", fail)
    raw_features = {k: v for k, v in raw_features.items() if k != "sample_rate"}
    raw_preprocessing = {k: v for k, v in raw_preprocessing.items() if k != "sample_rate"}

    try:
        options = feature_options(features, raw_features)
    except (TypeError, ValueError) as exc:
        raise fail(options_key, str(exc).strip("'\"")) from None
    preprocessing = _audio_options(raw_preprocessing, preprocessing_key, fail)

    onnx = doc.get("onnx", "model.onnx")
    if not isinstance(onnx, str) or not onnx or Path(onnx).name != onnx:
        raise fail("onnx", f"must be a file name inside the bundle folder, got {onnx!r}")
    if not (json_path.parent / onnx).is_file():
        raise fail("onnx", f"model file {onnx} missing")

    if version == 1:
        metadata = {k: doc[k] for k in sorted(_V1_METADATA) if k in doc}
    else:
        metadata = _mapping(doc.get("metadata", {}), "metadata", fail)
    try:
        calibration = parse_calibration(doc["calibration"]) if "calibration" in doc else None
    except ValueError as exc:
        field_name, _, reason = str(exc).partition(": ")
        raise fail(field_name, reason) from None
    dimensions = doc.get("dimensions", [])
    if dimensions and (not isinstance(dimensions, list) or tuple(dimensions) != DIMENSIONS):
        raise fail("dimensions", f"must be {list(DIMENSIONS)} (in this order) when present, got {dimensions!r}")
    return ModelBundle(
        name=name,
        labels=tuple(labels),
        features=features,
        feature_options=options,
        preprocessing=preprocessing,
        onnx=onnx,
        metadata=metadata,
        calibration=calibration,
        dimensions=tuple(dimensions),
        format=version,
        folder=json_path.parent,
    )


def _check_rate(value: Any, key: str, fail: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value != SAMPLE_RATE:
        raise fail(key, f"{_ONLY_RATE}, got {value!r}")


def _mapping(value: Any, key: str, fail: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(key, "must be a JSON object")
    return value


RETIRED_AUDIO_OPTIONS = ("max_duration_s",)
"""Options bundles once stored in ``preprocessing`` and no longer part of it (a length limit belongs to the door
that applies it): read and ignored."""


def _audio_options(raw: dict[str, Any], key: str, fail: Any) -> AudioOptions:
    known = {f.name for f in fields(AudioOptions)}
    raw = {name: value for name, value in raw.items() if name not in RETIRED_AUDIO_OPTIONS}
    for name in raw:
        if name not in known:
            raise fail(f"{key}.{name}", f"unknown option (known: {', '.join(sorted(known))})")
    try:
        return replace(AudioOptions(), **raw)
    except (TypeError, ValueError) as exc:
        raise fail(key, str(exc)) from None


def bundled_models_dir() -> Path:
    """Folder holding the models that ship with the package (``models/`` in the repository)."""
    return Path(str(resources.files("speech_emotion.bundled_models")))


def available_models() -> dict[str, str]:
    """The bundled models by name, each mapped to the bundle it loads: itself, or for an alias such as
    ``default`` the bundle its ``LINK`` names. Sorted by name; reads no ONNX file."""
    found: dict[str, str] = {}
    for folder in sorted(bundled_models_dir().iterdir()):
        if not folder.is_dir() or folder.name.startswith(("_", ".")):
            continue
        if (folder / "model.json").is_file():
            found[folder.name] = folder.name
        elif (folder / "LINK").is_file():
            found[folder.name] = (folder / "LINK").read_text().strip()
    return found


def describe_available() -> str:
    """``available_models()`` as one line, aliases with their targets:
    ``cnn-lstm, default (-> whisper-base-general), whisper-base-general, whisper-base-probe``."""
    return ", ".join(name if target == name else f"{name} (-> {target})" for name, target in available_models().items())


def resolve_model(model: str | Path | None = None) -> Path:
    """Bundle folder for a bundled model name (alias included), a bundle folder, or a ``model.json`` path.

    Raises :class:`ModelError` listing :func:`available_models` when ``model`` is none of these.
    """
    if model is None:
        model = DEFAULT_MODEL
    path = Path(model)
    if path.name == "model.json" and path.is_file():
        return path.parent
    if (path / "model.json").is_file():
        return path
    if (path / "LINK").is_file() and path.parent.resolve() == bundled_models_dir().resolve():
        return resolve_model((path / "LINK").read_text().strip())  # models/default given as a folder
    bundled = bundled_models_dir() / str(model)
    if (bundled / "model.json").is_file():
        return bundled
    if (bundled / "LINK").is_file():
        return resolve_model((bundled / "LINK").read_text().strip())
    raise ModelError(f"{model}: not a model folder and not a bundled model (bundled: {describe_available()})")


def load_bundle(model: str | Path | None = None) -> ModelBundle:
    """:func:`read_bundle` of :func:`resolve_model` ``(model)``: a bundled name, alias, folder or ``model.json``."""
    return read_bundle(resolve_model(model))
