"""Response checks: json, xml and text bodies, each expect operator, capture, hostile XML."""

from __future__ import annotations

import encodings
import json
from typing import Any

import httpx
import pytest

from dispatcher.errors import UnreadableResponse
from dispatcher.model.response import ResponseSpec
from dispatcher.pipeline import expect
from dispatcher.pipeline.expect import check_body, parse_body
from dispatcher.pipeline.judge import judge

JSON_BODY = b'{"status":"ok","code":0,"done":true,"data":{"id":"m-1","ids":[4,5]},"note":null}'
XML_BODY = (
    b'<?xml version="1.0"?><r xmlns="urn:x" code="0"><status> ok </status>'
    b"<items><item><id>1</id></item><item><id>2</id></item></items><one><item>9</item></one></r>"
)


def spec(fmt: str = "json", *expect: dict[str, Any], **capture: str) -> ResponseSpec:
    return ResponseSpec.from_dict({"format": fmt, "expect": list(expect), "capture": capture})


@pytest.mark.parametrize(
    "expectation",
    [
        {"path": "status", "equals": "ok"},
        {"path": "code", "equals": 0},
        {"path": "code", "equals": "0"},
        {"path": "done", "equals": True},
        {"path": "done", "equals": "true"},
        {"path": "data.ids[1]", "equals": 5},
        {"path": "data.id", "exists": True},
        {"path": "note", "exists": True},
        {"path": "missing", "exists": False},
        {"path": "data.id", "matches": "^m-\\d$"},
        {"path": "status", "in": ["ok", "queued"]},
        {"path": "status", "equals": "ok", "matches": "o", "exists": True},
    ],
)
def test_json_expectations_that_hold(expectation: dict[str, Any]) -> None:
    assert check_body(spec("json", expectation), JSON_BODY) == ([], {})


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        ({"path": "status", "equals": "done"}, 'expected status to equal "done", got "ok"'),
        ({"path": "done", "equals": 1}, "expected done to equal 1, got true"),
        ({"path": "data.id", "exists": False}, "expected data.id to be absent"),
        ({"path": "nope", "exists": True}, "expected nope to exist"),
        ({"path": "nope", "equals": "x"}, "expected nope to be present"),
        ({"path": "status", "matches": "^fail"}, "expected status to match '^fail'"),
        ({"path": "status", "in": ["a", "b"]}, 'expected status to be one of "a", "b", got "ok"'),
    ],
)
def test_json_expectations_that_fail_say_why(expectation: dict[str, Any], message: str) -> None:
    failures, _ = check_body(spec("json", expectation), JSON_BODY)
    assert len(failures) == 1
    assert failures[0].startswith(message)


def test_every_failed_expectation_is_reported() -> None:
    failures, _ = check_body(
        spec("json", {"path": "status", "equals": "x"}, {"path": "code", "equals": 1}), JSON_BODY
    )
    assert len(failures) == 2


def test_capture_copies_values_and_skips_missing_paths() -> None:
    _, captured = check_body(spec("json", id="data.id", ids="data.ids", gone="x.y"), JSON_BODY)
    assert captured == {"id": "m-1", "ids": [4, 5]}


def test_unparseable_body_fails_only_when_something_is_expected() -> None:
    failures, _ = check_body(spec("json", {"path": "status", "equals": "ok"}), b"<html>")
    assert failures == ["response is not valid JSON: Expecting value: line 1 column 1 (char 0)"]
    assert check_body(spec("json", id="data.id"), b"<html>") == ([], {})


def test_nothing_to_check_reads_nothing() -> None:
    assert check_body(ResponseSpec(), b"\xff not even text") == ([], {})


def test_xml_paths_start_below_the_root_and_ignore_namespaces() -> None:
    response = spec(
        "xml",
        {"path": "status", "equals": "ok"},
        {"path": "@code", "equals": 0},
        {"path": "items.item[1].id", "equals": 2},
        {"path": "one.item[0]", "equals": 9},
        id="items.item[0].id",
    )
    assert check_body(response, XML_BODY) == ([], {"id": "1"})


PAYMENT_BODY = b"<Payment><Amount>100.00</Amount><Code>00</Code><Ref>007</Ref></Payment>"


@pytest.mark.parametrize(
    "expectation",
    [
        {"path": "Amount", "equals": 100},
        {"path": "Amount", "gte": 100, "lte": 100},  # as the ordering operators read it
        {"path": "Amount", "not_equals": 100.01},
        {"path": "Code", "in": [0, 99]},
        {"path": "Code", "not_in": [1]},
        {"path": "Code", "equals": "00"},  # a text operand compares as text
        {"path": "Ref", "not_equals": "7"},
    ],
)
def test_an_xml_answers_numeric_text_equals_a_number_it_is_equal_to(
    expectation: dict[str, Any],
) -> None:
    """A numeric text counts as a number in an XML answer: for equals and in as for gte."""
    assert check_body(spec("xml", expectation), PAYMENT_BODY) == ([], {})


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        ({"path": "Amount", "not_equals": 100}, "expected Amount not to equal 100"),
        ({"path": "Code", "not_in": [0]}, 'expected Code not to be one of 0, got "00"'),
        ({"path": "Amount", "equals": "100"}, 'expected Amount to equal "100", got "100.00"'),
    ],
)
def test_an_xml_answers_numeric_text_fails_as_the_number_it_is(
    expectation: dict[str, Any], message: str
) -> None:
    assert check_body(spec("xml", expectation), PAYMENT_BODY) == ([message], {})


SOAP_BODY = (
    b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
    b'<soap:Body><m:Result xmlns:m="urn:erp" xml:lang="sw"><m:Status>OK</m:Status>'
    b"<m:Ref>R-7</m:Ref></m:Result></soap:Body></soap:Envelope>"
)


def test_xml_paths_written_with_the_answers_prefixes_find_its_elements() -> None:
    """The prefixes a vendor's documents write (`soap:Body`) name the same elements as the
    local names: written in a path, they must not fail every answer as `response_invalid`."""
    response = spec(
        "xml",
        {"path": "soap:Body.m:Result.m:Status", "equals": "OK"},
        {"path": "Body.Result.@xml:lang", "equals": "sw"},
        {"path": "soap:Body.m:Result.m:Missing", "exists": False},
        ref="soap:Body.m:Result.m:Ref",
        plain="Body.Result.Ref",
    )
    assert check_body(response, SOAP_BODY) == ([], {"ref": "R-7", "plain": "R-7"})
    failures, _ = check_body(
        spec("xml", {"path": "soap:Body.m:Result.m:Status", "equals": "NO"}), SOAP_BODY
    )
    assert failures == ['expected soap:Body.m:Result.m:Status to equal "NO", got "OK"']


def test_a_json_key_with_a_colon_is_found_as_written() -> None:
    failures, captured = check_body(
        spec("json", {"path": "ns:status", "equals": "ok"}, id="ns:id"),
        b'{"ns:status": "ok", "ns:id": 3, "status": "no"}',
    )
    assert (failures, captured) == ([], {"id": 3})


@pytest.mark.parametrize(
    "body",
    [
        b'<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><r>&b;</r>',
        b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        b'<!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd"><r/>',
        b"<r><unclosed></r>",
    ],
)
def test_hostile_or_broken_xml_is_refused_not_expanded(body: bytes) -> None:
    failures, captured = check_body(spec("xml", {"path": "x", "exists": False}), body)
    assert len(failures) == 1
    assert failures[0].startswith("response is not acceptable XML")
    assert captured == {}


def test_text_body_is_checked_whole() -> None:
    response = spec("text", {"path": ".", "matches": "^OK \\d+"}, reply=".")
    assert check_body(response, b"OK 1234\n") == ([], {"reply": "OK 1234\n"})
    failures, _ = check_body(response, b"ERR quota")
    assert failures == ["expected the body to match '^OK \\\\d+', got \"ERR quota\""]


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"\xef\xbb\xbfOK 4711", "text/plain; charset=utf-8"),  # a UTF-8 byte order mark
        (b"\xef\xbb\xbfOK 4711", ""),
        ("\ufeffOK 4711".encode("utf-16-le"), ""),  # UTF-16 by its mark, left or right
        ("\ufeffOK 4711".encode("utf-16-be"), "text/plain"),
        (b"\xef\xbb\xbfOK 4711", "text/plain; charset=iso-8859-1"),  # the mark decides
        ("OK 4711".encode("utf-16-le"), "text/plain; charset=UTF-16LE"),
    ],
)
def test_a_text_answer_is_read_by_its_byte_order_mark_which_is_no_part_of_it(
    body: bytes, content_type: str
) -> None:
    response = spec("text", {"path": ".", "equals": "OK 4711"}, reply=".")
    assert check_body(response, body, content_type) == ([], {"reply": "OK 4711"})


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("Accepté".encode("latin-1"), "text/plain; charset=iso-8859-1"),
        ("Accepté".encode("latin-1"), 'text/plain;Charset="ISO-8859-1"'),
        ("Accepté".encode("cp1252"), "text/plain; format=flowed; charset=windows-1252"),
        ("受付".encode("shift_jis"), "text/plain; charset=Shift_JIS"),
        ("Accepté".encode(), "text/plain"),  # no charset: UTF-8
    ],
)
def test_a_text_answer_is_decoded_with_the_charset_it_declares(
    body: bytes, content_type: str
) -> None:
    response = spec("text", {"path": ".", "matches": "^(Accepté|受付)$"})
    assert check_body(response, body, content_type) == ([], {})


@pytest.mark.parametrize("charset", ["x-no-such-thing", "base64", "idna", "undefined", "a/../b"])
def test_a_charset_python_cannot_decode_text_with_is_read_as_utf8(charset: str) -> None:
    response = spec("text", reply=".")
    content_type = f"text/plain; charset={charset}"
    assert check_body(response, "Accepté".encode(), content_type) == ([], {"reply": "Accepté"})
    latin = "Accepté".encode("latin-1")
    assert check_body(response, latin, content_type) == ([], {"reply": "Accept\ufffd"})


def test_unknown_charsets_are_not_looked_up() -> None:
    # the codec registry remembers every name asked for, unknown ones too: an answer's
    # charset is the third party's to choose, so only Python's own names are looked up
    cache: dict[str, Any] = encodings._cache  # type: ignore[attr-defined]
    before = len(cache)
    for n in range(200):
        check_body(spec("text", reply="."), b"OK", f"text/plain; charset=x-made-up-{n}")
    assert len(cache) <= before + 1


def test_judge_reads_a_text_answer_by_its_content_type() -> None:
    response = spec("text", {"path": ".", "equals": "Accepté"})
    headers = httpx.Headers({"Content-Type": "text/plain; charset=iso-8859-1"})
    assert judge(response, 200, headers, "Accepté".encode("latin-1")).ok


BALANCE = b'{"balance": 1000000000000000.01, "rate": 1.10, "n": 7, "status": "ok"}'


@pytest.mark.parametrize(
    ("condition", "ok"),
    [
        ({"path": "balance", "equals": 1000000000000000}, False),  # a float would hold it equal
        ({"path": "balance", "not_equals": 1000000000000000}, True),
        ({"path": "balance", "gt": 1000000000000000}, True),
        ({"path": "balance", "lte": 1000000000000000}, False),
        ({"path": "balance", "equals": "1000000000000000.01"}, True),  # its text as written
        ({"path": "balance", "in": ["1000000000000000.01"]}, True),
        ({"path": "balance", "matches": "\\.01$"}, True),
        ({"path": "rate", "equals": 1.1}, True),  # as decimals, 1.10 is 1.1
        ({"path": "rate", "equals": "1.10"}, True),
        ({"path": "rate", "equals": "1.1"}, False),  # a text is compared with the text written
        ({"path": "rate", "lt": 1.1000000000000001}, False),
    ],
)
def test_an_answers_numbers_compare_exactly_as_the_decimals_written(
    condition: dict[str, Any], ok: bool
) -> None:
    failures, _ = check_body(spec("json", condition), BALANCE)
    assert (failures == []) is ok, failures


def test_an_answer_is_read_exactly_only_for_a_check_on_a_number_with_a_fraction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read: list[bytes] = []
    monkeypatch.setattr(expect, "read_json_exact", lambda body: read.append(body) or {})
    cheap = (
        {"path": "status", "equals": "ok"},
        {"path": "n", "gte": 7},
        {"path": "balance", "exists": True},
    )
    assert check_body(spec("json", *cheap), BALANCE) == ([], {})
    assert check_body(spec("json", reply="balance"), BALANCE) == ([], {"reply": 1e15})
    assert read == []
    check_body(spec("json", {"path": "rate", "gt": 1}), BALANCE)
    assert read == [BALANCE]


def test_captured_numbers_stay_plain_json_values_when_checks_read_exactly() -> None:
    response = spec("json", {"path": "balance", "gt": 0}, balance="balance", rate="rate")
    failures, captured = check_body(response, BALANCE)
    assert failures == []
    assert captured == {"balance": 1000000000000000.01, "rate": 1.1}
    assert json.dumps(captured)


@pytest.mark.parametrize("number", [b"1e999999999", b"-1e999999999", b"1e-999999999"])
def test_a_number_past_a_floats_range_is_read_as_before_not_written_out(number: bytes) -> None:
    body = b'{"x": ' + number + b"}"
    response = spec("json", {"path": "x", "matches": "^0$"}, {"path": "x", "gt": 0})
    # as a float reads it (inf, -inf or 0.0): never a billion digits of text to match
    failures, _ = check_body(response, body)
    assert failures[0].startswith("expected x to match '^0$', got")


def test_reading_exactly_keeps_the_size_bound() -> None:
    response = ResponseSpec.from_dict({"max_bytes": 20, "expect": [{"path": "balance", "gt": 0}]})
    failures, _ = check_body(response, BALANCE)
    assert failures == ["response body is larger than 20 bytes; not checked"]


def test_body_larger_than_max_bytes_is_not_checked() -> None:
    response = ResponseSpec.from_dict(
        {"max_bytes": 10, "expect": [{"path": "status", "equals": "ok"}]}
    )
    failures, _ = check_body(response, JSON_BODY)
    assert failures == ["response body is larger than 10 bytes; not checked"]


def test_long_values_are_clipped_in_messages() -> None:
    body = b'{"status":"' + b"x" * 500 + b'"}'
    failures, _ = check_body(spec("json", {"path": "status", "equals": "ok"}), body)
    assert len(failures[0]) < 150


def test_judge_turns_failed_checks_into_a_permanent_response_invalid() -> None:
    response = spec("json", {"path": "status", "equals": "done"}, id="data.id")
    verdict = judge(response, 200, {}, JSON_BODY)
    assert (verdict.ok, verdict.kind, verdict.retryable) == (False, "response_invalid", False)
    assert verdict.captured == {"id": "m-1"}
    assert judge(spec("json", id="data.id"), 201, {}, JSON_BODY).captured == {"id": "m-1"}


@pytest.mark.parametrize("depth", [66, 5000])
def test_xml_nested_too_deeply_is_an_unreadable_response_not_a_crash(depth: int) -> None:
    body = b"<a>" * depth + b"</a>" * depth
    failures, captured = check_body(spec("xml", {"path": "x", "exists": False}), body)
    assert failures == ["response XML nests deeper than 64 levels"]
    assert captured == {}


def test_xml_at_the_depth_bound_is_read() -> None:
    body = b"<a>" * 65 + b"deep" + b"</a>" * 65  # the root and 64 levels below it, as for JSON
    path = ".".join(["a"] * 64)
    assert check_body(spec("xml", reply=path), body) == ([], {"reply": "deep"})


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": 123456789012345678901, "small": 7}',  # past 64 bits: every digit kept
        b'{"v": NaN, "w": -Infinity}',  # orjson refuses these; the standard library reads them
        '{"name": "Amina é"}'.encode("utf-16"),
        b'\xef\xbb\xbf{"id": 1}',  # a UTF-8 byte order mark
        b'{"big": 1.5e400, "tiny": 5e-400}',
        b'{"a": 1, "a": 2}',  # the last of a repeated key
        b'{"s": "\\ud800"}',  # a lone surrogate
    ],
)
def test_a_json_answer_is_read_as_the_standard_library_reads_it(body: bytes) -> None:
    assert repr(parse_body("json", body, 10_000)) == repr(json.loads(body))


def test_a_json_answer_the_standard_library_refuses_is_unreadable() -> None:
    with pytest.raises(UnreadableResponse, match="not valid JSON"):
        parse_body("json", b'{"id": 1,}', 10_000)


@pytest.mark.parametrize(
    ("fmt", "document", "content_type"),
    [
        ("json", '{"status": "Accepté", "amount": 19.90}', "application/json; charset=iso-8859-1"),
        ("json", '{"status": "Accepté", "amount": 19.90}', "application/json;charset=windows-1252"),
        (
            "xml",
            "<r><status>Accepté</status><amount>19.90</amount></r>",
            "text/xml; charset=latin1",
        ),
        (
            "xml",
            '<?xml version="1.0"?><r><status>Accepté</status><amount>19.90</amount></r>',
            'application/xml; charset="ISO-8859-1"',
        ),
    ],
)
def test_a_json_or_xml_answer_in_the_charset_it_declares_is_read_in_it(
    fmt: str, document: str, content_type: str
) -> None:
    """An older server's Latin-1 answer that says so: refused as unreadable, the request the
    third party took was dead-lettered `response_invalid`."""
    response = spec(
        fmt,
        {"path": "status", "equals": "Accepté"},
        {"path": "amount", "gte": 19.9},
        reply="status",
    )
    body = document.encode("latin-1")
    assert check_body(response, body, content_type) == ([], {"reply": "Accepté"})


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_answer_that_reads_as_it_stands_is_not_read_in_another_charset(fmt: str) -> None:
    """UTF-8 is JSON's own encoding and an XML document's when it declares none: a charset that
    says otherwise is used only when the body does not read as it stands."""
    document = '{"status": "Accepté"}' if fmt == "json" else "<r><status>Accepté</status></r>"
    response = spec(fmt, reply="status")
    found = check_body(response, document.encode(), "text/plain; charset=iso-8859-1")
    assert found == ([], {"reply": "Accepté"})
    latin = check_body(response, document.encode("latin-1"), "text/plain")  # says nothing
    assert latin[1] == {}


def test_a_json_answer_that_is_a_list_is_checked_and_captured_from_its_items() -> None:
    """A bulk SMS gateway answers a list, one item per message: its paths start with an index
    (`[0].status`), which was refused as invalid, so no such answer could be checked."""
    response = spec(
        "json",
        {"path": "[0].status", "equals": "SENT"},
        {"path": "[-1].code", "lt": 10},
        id="[0].id",
    )
    body = b'[{"status": "SENT", "id": "m-1", "code": 0}, {"status": "SENT", "code": 3}]'
    assert check_body(response, body) == ([], {"id": "m-1"})
    failed, _ = check_body(spec("json", {"path": "[0].status", "equals": "SENT"}), b"{}")
    assert failed == ["expected [0].status to be present"]  # not a list: no item 0
