"""Twilio Media Streams: the wire protocol and the signed WebSocket upgrade (the transport side
of real-time calls; the dialog itself knows nothing of it)."""
