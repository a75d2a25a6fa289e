"""Kafka I/O: clients, the topic scanner, the outcome writer, the hook store and the Avro codecs."""
