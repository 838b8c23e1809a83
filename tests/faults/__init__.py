"""The fault suite (issue 7); a package so its conftest does not shadow tests/conftest.py."""
