"""Helpers for tests/test_speech_*.py (no data files: audio and models are generated)."""
