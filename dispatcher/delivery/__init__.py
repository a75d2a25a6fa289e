"""Sending one (event, hook) pair: building the request, the HTTP exchange, judging, retrying."""
