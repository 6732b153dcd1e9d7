"""Research-only Whisper heads (attention/MLP heads over frozen encoder states) and their trainer.

Used by ``scripts/experiments_whisper.py`` only; nothing shipped (recipes, bundles, inference) imports it.
"""
