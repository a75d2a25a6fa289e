"""What operators do: apply, delete, list and show hooks, try a hook, replay dead letters.

Each operation returns values; the surfaces (cli/, api/) format and print them.
"""
