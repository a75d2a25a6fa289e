"""`make bench`: the dispatcher side by side with the HTTP ceiling, a naive loop and a Quix app.

Everything runs on this machine, on loopback only: a local Kafka broker, nginx as the receiver
(plus a socket that never answers), and each contender as its own subprocess, measured from
/proc. `python -m bench --help` lists the knobs; results go to bench/results/.
"""
