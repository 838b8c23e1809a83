"""Loopback fakes of the external services Steward talks to."""
