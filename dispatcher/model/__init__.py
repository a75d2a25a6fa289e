"""Frozen values that flow between the stages: events, hooks, pairs and outcomes. No I/O."""
