"""Credentials, signatures, payload encryption and the destination guard."""
