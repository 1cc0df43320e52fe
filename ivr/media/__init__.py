"""Real-time media for one call, independent of any transport (see session.py).

Imports nothing of Flask, Twilio, SQLAlchemy, websockets or ivr.telephony (checked by
tests/test_import_contract.py): a Media Streams or SIP transport translates its wire format
into session calls and the session's commands back into wire messages.
"""
