"""Hearing the caller: offline recognition with Vosk, then understanding (issues 3 and 9).

Recordings (webhook mode) and live audio (Media Streams) share one package and one pool:

- models:        install / find / inspect model folders (no vosk import)
- audio:         Twilio audio (WAV, PCM or μ-law) → 16-bit mono PCM at the model's rate
- grammar:       phrase lists → crash-proof Vosk grammars; re-check results
- pool:          recognition in worker processes, isolated from the web workers: whole
                 recordings (batch) and per-call streaming sessions
- batch:         Hearing: a recording → an understood answer
- build:         Settings → the service's Hearing (Vosk, transcripts, or nothing)
- sessions, session_process: a process per live call, forked from one that loaded the model
- streaming:     a call's live recogniser: 20 ms frames in, partial words, final text
- endpointer:    end of speech from a VAD, waiting longer unless the partial is a complete phrase
- understanding: "are the words so far already a complete phrase of the step's grammar?"
- live_turn:     one spoken turn: streaming session + endpointer + completeness
- transcript_wav: recordings that carry their words (simulator and tests)
- transcript_stream: live audio that carries its words, and the recogniser that reads them

Import the submodules directly; this package imports nothing heavy, and nothing from the web
framework, Twilio or ivr.telephony (tests/test_import_contract.py).
"""
