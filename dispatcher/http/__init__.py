"""Sending: the pinned, guarded transport, response caps, per-hook limits and clients."""
