"""Hooks ("POST-APIs"): the model, loading and validation, matching events to hooks."""

from dispatcher.hooks.model import Hook

__all__ = ["Hook"]
