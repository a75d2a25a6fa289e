"""The command line: argument parsing, commands and output. The only place that prints."""
