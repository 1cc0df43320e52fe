"""The dialog engine: a VoiceXML-like interpreter of the flows, free of Flask and Twilio."""
