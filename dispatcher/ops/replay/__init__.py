"""Replaying dead letters: the plan (pure), the run (through the delivery path), and jobs."""
