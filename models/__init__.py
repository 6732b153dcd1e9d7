"""Model bundles shipped with speech-emotion (installed as ``speech_emotion.bundled_models``)."""
