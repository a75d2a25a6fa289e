"""The pure stages of one pair, in flow order: decode, intake, match, render, request, judge, retry.

No Kafka, no sockets, no clock: each stage takes the previous stage's value and returns the next.
"""
