"""The destination guard through a running worker: refused pairs become `blocked` dead letters.

Every URL here is loopback in disguise, so no packet could leave the machine even if the guard
failed: the service allows loopback (as tests need) and each probed hook turns that off for
itself with `allow_loopback: false`. A control hook without the override reaches
the same receiver, so a refusal is the guard's doing, not an unreachable port.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from dispatch_support import Deployment, cloud_event, collect_until, hook
from kafka_support import Record

from dispatcher.devtools.receiver import Behaviour, Receiver

REMEDY = r"to allow it, set allow_loopback: true on the hook .* to allow_cidrs"
# (host as written in the URL, why it is refused, whether the message names the remedy)
DISGUISES = [
    ("127.0.0.1", r"which is loopback \(127\.0\.0\.0/8\)", True),
    ("127.1.2.3", r"which is loopback \(127\.0\.0\.0/8\)", True),
    ("[::1]", r"which is loopback \(::1/128\)", True),
    ("[::ffff:127.0.0.1]", r"as the IPv4-mapped address 127\.0\.0\.1", True),
    ("[::ffff:7f00:1]", r"as the IPv4-mapped address 127\.0\.0\.1", True),
    ("0x7f.1", r"0x7f\.1 resolves to 127\.0\.0\.1, which is loopback", True),
    # shorthand and integer forms are refused outright, before any look-up
    ("127.1", r"'127\.1' is not an IP address in canonical form", False),
    ("2130706433", r"'2130706433' is not an IP address in canonical form", False),
]


def letters_by_hook(records: list[Record]) -> dict[str, Record]:
    return {(r.header("dispatcher.hook.id") or b"").decode(): r for r in records}


def message_of(letter: Record) -> str:
    return (letter.header("dispatcher.error.message") or b"").decode()


def test_loopback_in_any_disguise_is_a_blocked_dead_letter_saying_why_and_how_to_allow_it(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    with Receiver() as receiver:
        probes = [
            hook(
                f"probe-{i}",
                f"http://{host}:{receiver.port}/probe-{i}",
                ["ssrf.probe"],
                allow_loopback=False,
            )
            for i, (host, _why, _remedy) in enumerate(DISGUISES)
        ]
        control = hook("control", f"{receiver.url}/control", ["ssrf.probe"])
        deployment = Deployment(kafka_bootstrap, tmp_path, [*probes, control])
        event = cloud_event("ssrf.probe", {"n": 1})
        deployment.produce_events([event])
        with deployment.worker():
            dead = collect_until(
                kafka_bootstrap, deployment.dead_letter, lambda rs: len(rs) >= len(DISGUISES), 60
            )
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) > len(DISGUISES), 30
            )
        outcomes = {r.json()["hook_id"]: r.json() for r in results}
        assert outcomes["control"]["outcome"] == "delivered"
        assert [r.path for r in receiver.received()] == ["/control"]  # no probe got through
    letters = letters_by_hook(dead)
    assert set(letters) == {p["id"] for p in probes}
    for i, (host, why, remedy) in enumerate(DISGUISES):
        letter = letters[f"probe-{i}"]
        message = message_of(letter)
        assert letter.header("dispatcher.error.kind") == b"blocked", host
        assert letter.header("dispatcher.attempts") == b"1", host  # permanent: never retried
        assert letter.value == json.dumps(event).encode(), host  # the original, unchanged
        assert message.startswith("destination refused"), message
        assert re.search(why, message), message
        if remedy:
            assert re.search(REMEDY, message), message
        outcome = outcomes[f"probe-{i}"]
        assert (outcome["outcome"], outcome["error_kind"]) == ("dead_lettered", "blocked")
        assert outcome["http_status"] is None


def test_following_the_advice_admits_the_destination(kafka_bootstrap: str, tmp_path: Path) -> None:
    with Receiver() as receiver:
        deployment = Deployment(
            kafka_bootstrap,
            tmp_path,
            [hook("crm", f"{receiver.url}/crm", ["ssrf.probe"], allow_loopback=False)],
            extra={"allow_cidrs": ["127.0.0.0/8"]},  # what the refusal told us to add
        )
        deployment.produce_events([cloud_event("ssrf.probe", {"n": 1})])
        with deployment.worker():
            results = collect_until(
                kafka_bootstrap, deployment.results, lambda rs: len(rs) >= 1, 60
            )
        assert results[0].json()["outcome"] == "delivered"
        assert [r.path for r in receiver.received()] == ["/crm"]


def test_a_redirect_is_never_followed_and_is_a_permanent_failure(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    statuses = (301, 302, 303, 307, 308)
    with Receiver() as receiver:
        internal = f"http://127.0.0.1:{receiver.port}/internal"
        hooks = []
        for status in statuses:
            receiver.routes[f"/start-{status}"] = Behaviour(
                status=status, body=b"", headers=(("location", internal),)
            )
            hooks.append(hook(f"r{status}", f"{receiver.url}/start-{status}", ["order.paid"]))
        deployment = Deployment(kafka_bootstrap, tmp_path, hooks)
        deployment.produce_events([cloud_event("order.paid", {"n": 1})])
        with deployment.worker():
            dead = collect_until(
                kafka_bootstrap, deployment.dead_letter, lambda rs: len(rs) >= len(statuses), 60
            )
        # one request per hook, none to the Location: redirects are never followed
        assert sorted(r.path for r in receiver.received()) == [f"/start-{s}" for s in statuses]
    letters = letters_by_hook(dead)
    for status in statuses:
        letter = letters[f"r{status}"]
        assert letter.header("dispatcher.error.kind") == b"http_status"
        assert letter.header("dispatcher.http.status") == str(status).encode()
        assert letter.header("dispatcher.attempts") == b"1"  # a 3xx is permanent
        assert message_of(letter) == f"HTTP {status}: redirects are not followed"
