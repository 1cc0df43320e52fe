"""Status-change notifications: the hotline calls people when one of their matters needs them.

rules: what flows/notifications.yaml says (which changes, when to call, how often);
changes: what an import found to tell; planning: which numbers to call now; calls: the calls'
progress from the telephony's callbacks."""
