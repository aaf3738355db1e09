"""Stub servers for remote engines: real HTTP on loopback, speaking the documented protocol."""
