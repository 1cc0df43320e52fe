"""Offline speech recognition with Vosk (see issue 3).

- models:  install / find / inspect model folders (no vosk import)
- audio:   Twilio recording (WAV, PCM or μ-law) → 16-bit mono PCM at the model's rate
- grammar: phrase lists → crash-proof Vosk grammars; re-check results
- pool:    recognition in worker processes, isolated from the web workers

Import the submodules directly; this package imports nothing heavy.
"""
