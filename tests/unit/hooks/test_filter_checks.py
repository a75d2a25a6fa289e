"""`hooks validate` on filters: each mistake on its line, the same checks as response.expect."""

from __future__ import annotations

from dispatcher.hooks.loader import load_hooks_text, validate_hooks_text

HOOKS = """\
hooks:
  - id: sms-ke
    events: [order.shipped]
    url: https://sms.example.com/send
    filter:
      - {path: data.country, in: [KE, TZ]}
      - {path: data.total, gte: "100"}
      - {path: payload.total, gt: 1}
      - {path: data.name}
      - {path: data.name, matches: "(a)\\\\1"}
      - {path: data.name, exists: false, equals: x}
      - {path: data.name, between: [1, 2]}
"""


def test_filter_mistakes_are_reported_at_their_lines() -> None:
    found = [(p.line, p.path, p.message) for p in validate_hooks_text(HOOKS, "h.yaml")]
    assert [(line, path) for line, path, _ in found] == [
        (7, "hooks[0].filter[1].gte"),
        (8, "hooks[0].filter[2].path"),
        (9, "hooks[0].filter[3]"),
        (10, "hooks[0].filter[4].matches"),
        (11, "hooks[0].filter[5]"),
        (12, "hooks[0].filter[6].between"),
        (12, "hooks[0].filter[6]"),
    ]
    messages = [message for _, _, message in found]
    assert messages[0] == "must be a number"
    assert "'payload' is not part of an event" in messages[1]
    assert messages[2].startswith("checks nothing")
    assert messages[3].startswith("invalid regular expression (RE2 syntax)")
    assert messages[4] == "exists: false with another operator can never hold"
    assert messages[5].startswith("unknown key 'between'")


def test_a_valid_filter_loads_into_conditions() -> None:
    text = HOOKS.split("      - {path: data.total")[0]
    [hook] = load_hooks_text(text, "h.yaml")
    assert [c.to_dict() for c in hook.filter] == [{"path": "data.country", "in": ["KE", "TZ"]}]
