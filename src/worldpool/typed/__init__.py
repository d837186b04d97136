"""Handlers declared in Python with typed input and output (``@worldpool.handler``)."""

from worldpool.typed.declaration import TypedHandler, handler

__all__ = ["TypedHandler", "handler"]
