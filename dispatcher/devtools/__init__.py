"""Development helpers: a local Kafka broker, a loopback receiver and the demo. No service module imports these."""
