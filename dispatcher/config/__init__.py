"""Configuration: the service settings, secret references and durations."""
