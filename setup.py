"""Package layout only (metadata lives in pyproject.toml): ``models/`` ships as ``speech_emotion.bundled_models``."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "speech_emotion.bundled_models"],
    package_dir={"": "src", "speech_emotion.bundled_models": "models"},
)
