"""Chat channels, the one router, command handlers, and the `steward` command line."""
