"""The admin service's index of the results and dead-letter topics, in SQLite."""
