"""DUGAA dispatcher: delivers business events from Kafka to third-party POST-APIs."""

__version__ = "0.1.0"
USER_AGENT = f"dugaa-dispatcher/{__version__}"
