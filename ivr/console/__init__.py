"""The operators' side: accounts and audit now; the web console builds on them."""
