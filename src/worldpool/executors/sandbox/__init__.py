"""Sandbox providers for the shell executor: bubblewrap, locale2b and local (unsafe)."""
