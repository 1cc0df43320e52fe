"""The transactional outbox: messages and calls to Twilio, written with what causes them.

queueing writes the rows (database only: the repository and the console use it inside their
transactions); sending delivers them through the REST client (the worker and "call now").
Nothing is imported here, so queueing never pulls in the REST client.
"""
