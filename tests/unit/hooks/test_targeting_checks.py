"""`hooks validate` on filters, tenants and placeholders: each mistake on its line."""

from __future__ import annotations

from dispatcher.cli.output import hook_yaml
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


PLACEHOLDERS = """\
hooks:
  - id: status
    events: [order.shipped]
    tenant: "acme corp"
    url: https://{data.host}/orders/{data.id}
    headers:
      X-Order: "{data.order_id"
      X-Ref: "{payload.ref}"
      X-Ok: "order {data.order_id}"
  - id: fine
    events: [order.shipped]
    tenant: acme
    url: https://api.example.com/orders/{data.order_id}/status?ref={id}&s={subject}
    headers: {X-Order: "{data.order_id}", X-Braces: "{{literal}}"}
"""


def test_tenant_and_placeholder_mistakes_are_reported_at_their_lines() -> None:
    found = [(p.line, p.path, p.message) for p in validate_hooks_text(PLACEHOLDERS, "h.yaml")]
    assert [(line, path) for line, path, _ in found] == [
        (4, "hooks[0].tenant"),
        (5, "hooks[0].url"),
        (7, "hooks[0].headers.X-Order"),
        (8, "hooks[0].headers.X-Ref"),
    ]
    messages = [message for _, _, message in found]
    assert (
        messages[0]
        == "\"acme corp\" is not a valid tenant (letters, digits, '.', '_', '-'; at most 128)"
    )
    assert messages[1] == "placeholders may stand only in the path and the query, not in the host"
    assert messages[2].startswith("invalid template: unpaired '{'")
    assert "'payload' is not part of an event" in messages[3]


def test_a_valid_tenant_and_placeholders_load() -> None:
    text = "hooks:\n" + PLACEHOLDERS.split("  - id: fine\n")[1].join(["  - id: fine\n", ""])
    [hook] = load_hooks_text(text, "h.yaml")
    assert hook.tenant == "acme"
    assert hook.url.endswith("/orders/{data.order_id}/status?ref={id}&s={subject}")


def test_hooks_show_writes_tenant_and_filter_back_as_they_were_written() -> None:
    text = "hooks:\n" + PLACEHOLDERS.split("  - id: fine\n")[1].join(["  - id: fine\n", ""])
    text += "    filter:\n      - {path: data.total, gte: 100, lt: 1000.5}\n"
    [hook] = load_hooks_text(text, "h.yaml")
    shown = hook_yaml(hook)
    assert "tenant: acme\n" in shown
    assert "- {path: data.total, gte: 100, lt: 1000.5}" in shown
    first, *rest = shown.splitlines()
    again = "hooks:\n  - " + first + "\n" + "".join(f"    {line}\n" for line in rest)
    [reloaded] = load_hooks_text(again, "again.yaml")
    assert (reloaded.tenant, reloaded.filter) == (hook.tenant, hook.filter)
