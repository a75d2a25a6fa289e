"""Hook definitions: the schema, checks, credentials, and loading them from files."""
