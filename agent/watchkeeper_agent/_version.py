"""The agent's version, sent with every batch and read by the packaging metadata."""

VERSION = "0.1.0"
