"""The destination guard's table, its unwrapping of IPv6 forms, and its policy (no network)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dispatcher.errors import BlockedDestination, ConfigError
from dispatcher.security.guard import GuardPolicy, SystemResolver, check_addresses, classify

BLOCKED_V4 = [
    ("0.0.0.0", "this network"),
    ("0.255.255.255", "this network"),
    ("10.0.0.0", "private"),
    ("10.255.255.255", "private"),
    ("100.64.0.0", "CGNAT"),
    ("100.127.255.255", "CGNAT"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.0.1", "link-local"),
    ("169.254.255.255", "link-local"),
    ("169.254.169.254", "metadata"),
    ("172.16.0.0", "private"),
    ("172.31.255.255", "private"),
    ("192.0.0.0", "IETF protocol"),
    ("192.0.0.255", "IETF protocol"),
    ("192.0.2.1", "documentation"),
    ("192.168.0.0", "private"),
    ("192.168.255.255", "private"),
    ("198.18.0.0", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.255", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.254", "reserved"),
    ("255.255.255.255", "broadcast"),
]

BLOCKED_V6 = [
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::", "link-local"),
    ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"),
    ("fc00::", "unique local"),
    ("fdff:ffff::1", "unique local"),
    ("fd00:ec2::254", "metadata"),
    ("ff00::", "multicast"),
    ("ff02::1", "multicast"),
    ("2001:db8::", "documentation"),
    ("2001:db8:ffff:ffff::1", "documentation"),
    ("100::", "discard"),
    ("100::ffff:ffff:ffff:ffff", "discard"),
    ("64:ff9b:1::", "NAT64"),
    ("64:ff9b:1:ffff::1", "NAT64"),
    ("4000::1", "outside global unicast"),
]

PUBLIC = [
    "1.1.1.1",
    "8.8.8.8",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "192.0.1.0",
    "192.0.3.0",
    "192.167.255.255",
    "192.169.0.0",
    "198.17.255.255",
    "198.20.0.0",
    "198.51.101.0",
    "203.0.114.0",
    "223.255.255.255",
    "2606:4700:4700::1111",
    "2001:4860:4860::8888",
    "2a00:1450:4001::1",
]


def mapped(v4: int) -> str:
    return str(IPv6Address((0xFFFF << 32) | v4))


def translated(v4: int) -> str:
    return str(IPv6Address((0xFFFF << 48) | v4))


def compatible(v4: int) -> str:
    return str(IPv6Address(v4))


def nat64(v4: int) -> str:
    return str(IPv6Address((0x0064FF9B << 96) | v4))


def sixtofour(v4: int) -> str:
    return str(IPv6Address((0x2002 << 112) | (v4 << 80) | 1))


TEREDO_SERVER = int(IPv4Address("65.54.227.120"))  # the RFC 4380 example server, public


def teredo_client(v4: int) -> str:
    return str(IPv6Address((0x20010000 << 96) | (TEREDO_SERVER << 64) | (~v4 & 0xFFFFFFFF)))


def teredo_server(v4: int) -> str:
    public_client = ~int(IPv4Address("8.8.8.8")) & 0xFFFFFFFF
    return str(IPv6Address((0x20010000 << 96) | (v4 << 64) | public_client))


WRAPPINGS = {
    "IPv4-mapped": mapped,
    "SIIT": translated,
    "IPv4-compatible": compatible,
    "NAT64": nat64,
    "6to4": sixtofour,
    "Teredo client": teredo_client,
    "Teredo server": teredo_server,
}


@pytest.mark.parametrize(("address", "reason"), BLOCKED_V4 + BLOCKED_V6)
def test_every_blocked_range_is_refused_with_its_reason(address: str, reason: str) -> None:
    found = classify(address)
    assert found is not None
    assert reason in found


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_next_to_blocked_ranges_are_allowed(address: str) -> None:
    assert classify(address) is None


@pytest.mark.parametrize("form", WRAPPINGS)
@pytest.mark.parametrize(
    "inner", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "192.168.1.1", "100.64.0.1", "0.1.2.3"]
)
def test_ipv4_embedded_in_ipv6_is_unwrapped_and_checked(form: str, inner: str) -> None:
    found = classify(WRAPPINGS[form](int(IPv4Address(inner))))
    assert found is not None
    assert form.split()[0] in found
    assert inner in found


@pytest.mark.parametrize("form", WRAPPINGS)
def test_public_ipv4_embedded_in_ipv6_is_allowed(form: str) -> None:
    assert classify(WRAPPINGS[form](int(IPv4Address("8.8.8.8")))) is None


def test_teredo_client_is_the_inverted_low_32_bits() -> None:
    # RFC 4380 section 4: client 192.0.2.45 is written 3fff:fdd2
    found = classify("2001:0:4136:e378:8000:63bf:3fff:fdd2")
    assert found is not None
    assert "Teredo client address 192.0.2.45" in found


@given(st.integers(min_value=0, max_value=2**32 - 1), st.sampled_from(sorted(WRAPPINGS)))
def test_a_wrapped_ipv4_is_refused_exactly_when_the_plain_one_is(v4: int, form: str) -> None:
    assert (classify(WRAPPINGS[form](v4)) is None) == (classify(str(IPv4Address(v4))) is None)


def test_a_host_with_one_public_and_one_private_address_is_refused() -> None:
    with pytest.raises(BlockedDestination) as caught:
        check_addresses("api.example.com", ["93.184.216.34", "10.0.0.1"], GuardPolicy())
    message = str(caught.value)
    assert "api.example.com resolves to 10.0.0.1" in message
    assert "allow_private_networks: true" in message
    assert "allow_cidrs" in message
    assert caught.value.kind == "blocked"


def test_public_addresses_are_returned_vetted_in_order() -> None:
    vetted = check_addresses("api.example.com", ["2606:4700::1", "1.1.1.1"], GuardPolicy())
    assert vetted == (ip_address("2606:4700::1"), ip_address("1.1.1.1"))


def test_an_answer_that_is_not_an_address_is_refused() -> None:
    with pytest.raises(BlockedDestination, match="not an IP address"):
        check_addresses("h", ["localhost"], GuardPolicy())


METADATA_ENDPOINTS = [
    "169.254.169.254",
    "169.254.170.2",
    "169.254.170.23",
    "100.100.100.200",
    "fd00:ec2::254",
    "fd00:ec2::23",
]


def test_allow_private_admits_internal_addresses_but_not_metadata() -> None:
    policy = GuardPolicy(allow_private=True)
    assert check_addresses("h", ["10.0.0.1", "fd12::1", "169.254.1.1", "100.64.0.1"], policy)
    wrapped = mapped(int(IPv4Address("169.254.169.254")))
    for metadata in (*METADATA_ENDPOINTS, wrapped):
        with pytest.raises(BlockedDestination, match="only an allow_cidrs entry naming it alone"):
            check_addresses("h", [metadata], policy)


@pytest.mark.parametrize("metadata", METADATA_ENDPOINTS)
def test_no_switch_and_no_wide_network_admits_a_metadata_endpoint(metadata: str) -> None:
    wide = ["0.0.0.0/0", "::/0", "169.254.0.0/16", "100.64.0.0/10", "fd00::/8"]
    everything = GuardPolicy.from_config(True, wide, allow_loopback=True)
    with pytest.raises(BlockedDestination, match="cloud metadata endpoint"):
        check_addresses("h", [metadata], everything)
    assert check_addresses("h", [metadata], GuardPolicy.from_config(allow_cidrs=[metadata]))


@pytest.mark.parametrize("address", ["0.0.0.0", "0.1.2.3", "::", mapped(0)])
def test_nothing_admits_this_network_or_the_unspecified_address(address: str) -> None:
    everything = GuardPolicy.from_config(True, ["0.0.0.0/0", "::/0"], allow_loopback=True)
    with pytest.raises(BlockedDestination, match="nothing admits it"):
        check_addresses("h", [address], everything)


@pytest.mark.parametrize("address", ["127.0.0.1", "127.9.9.9", "::1", mapped(0x7F000001)])
def test_loopback_needs_its_own_opt_in(address: str) -> None:
    with pytest.raises(BlockedDestination, match="set allow_loopback: true"):
        check_addresses("h", [address], GuardPolicy(allow_private=True))
    assert check_addresses("h", [address], GuardPolicy(allow_loopback=True))
    with pytest.raises(BlockedDestination, match="private"):
        check_addresses("h", ["10.0.0.1"], GuardPolicy(allow_loopback=True))


@pytest.mark.parametrize("outer", ["64:ff9b::/96", "::ffff:0:0/96", "2002::/16"])
def test_allow_cidrs_match_the_embedded_address_never_the_outer_form(outer: str) -> None:
    policy = GuardPolicy.from_config(allow_cidrs=[outer])
    for form in ("NAT64", "IPv4-mapped", "6to4"):
        with pytest.raises(BlockedDestination, match="loopback"):
            check_addresses("h", [WRAPPINGS[form](0x7F000001)], policy)
    inner = GuardPolicy.from_config(allow_cidrs=["127.0.0.1/32"])
    assert check_addresses("h", [WRAPPINGS["NAT64"](0x7F000001)], inner)


def test_allow_cidrs_admit_only_the_listed_networks() -> None:
    policy = GuardPolicy.from_config(allow_cidrs=["10.1.0.0/16", "169.254.169.254/32"])
    assert check_addresses("h", ["10.1.2.3", "169.254.169.254"], policy)
    assert check_addresses("h", [mapped(int(IPv4Address("10.1.2.3")))], policy)
    with pytest.raises(BlockedDestination, match=r"10\.2\.0\.1"):
        check_addresses("h", ["10.1.2.3", "10.2.0.1"], policy)


def test_an_ip_literal_is_named_once_in_the_refusal() -> None:
    with pytest.raises(BlockedDestination) as caught:
        check_addresses("127.0.0.1", ["127.0.0.1"], GuardPolicy())
    assert str(caught.value).startswith("destination refused: 127.0.0.1, which is loopback")


def test_policy_from_config_parses_networks_and_names_a_bad_one() -> None:
    policy = GuardPolicy.from_config(True, ["10.0.0.1/8", "fd00::/8"])
    assert policy.allow_private
    assert policy.allow_cidrs == (ip_network("10.0.0.0/8"), ip_network("fd00::/8"))
    with pytest.raises(ConfigError, match=r"'10\.0\.0\.0/33'"):
        GuardPolicy.from_config(allow_cidrs=["10.0.0.0/33"])


def test_system_resolver_answers_ip_strings() -> None:
    # a numeric host: getaddrinfo answers without asking any name server
    assert asyncio.run(SystemResolver().resolve("127.0.0.1", 80)) == ["127.0.0.1"]
