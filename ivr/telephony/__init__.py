"""Telephony adapters: translate a carrier's requests into engine events and Turns into replies."""
