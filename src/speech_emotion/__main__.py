"""``python -m speech_emotion``: the ``speech-emotion`` command, with its arguments and exit status."""

from __future__ import annotations

import sys

from .cli.main import main

if __name__ == "__main__":
    sys.exit(main())
