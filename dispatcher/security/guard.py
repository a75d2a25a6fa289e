"""The destination guard: which resolved addresses a hook may connect to (contract section 4).

The blocked networks are an explicit table rather than `ipaddress.is_global` / `is_private`,
whose answers differ between Python versions. IPv6 forms that carry an IPv4 address
(mapped, compatible, SIIT, NAT64, 6to4, Teredo) are unwrapped and the embedded address is
checked too, and `allow_cidrs` is matched against the address actually connected to: the
embedded IPv4 address, never the IPv6 form around it.

What the switches lift:
- `allow_private_networks`: private, link-local, shared, reserved ... networks; not loopback;
- `allow_loopback`: loopback (127.0.0.0/8, ::1);
- `allow_cidrs`: the networks listed. A cloud metadata endpoint is admitted only by an entry
  that names it alone (`169.254.169.254/32`), never by a wider one or a switch;
- nothing admits 0.0.0.0/8 or `::`, which reach this very machine.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Protocol

from dispatcher.errors import BlockedDestination, ConfigError

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

METADATA = "cloud metadata endpoint"
LOOPBACK = "loopback"
THIS_NETWORK = "'this network'"
UNSPECIFIED = "unspecified"
NEVER = frozenset({THIS_NETWORK, UNSPECIFIED})  # connecting there reaches the local host

# (network, what it is); a more specific entry comes before the one containing it.
BLOCKED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ip_network(cidr), label)
    for cidr, label in (
        ("169.254.169.254/32", METADATA),  # AWS, GCP, Azure, OpenStack ...
        ("169.254.170.2/32", METADATA),  # AWS ECS task credentials
        ("169.254.170.23/32", METADATA),  # AWS EKS Pod Identity
        ("100.100.100.200/32", METADATA),  # Alibaba Cloud
        ("0.0.0.0/8", THIS_NETWORK),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", LOOPBACK),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation, TEST-NET-1"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation, TEST-NET-2"),
        ("203.0.113.0/24", "documentation, TEST-NET-3"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "limited broadcast"),
        ("240.0.0.0/4", "reserved"),
        ("fd00:ec2::254/128", METADATA),  # AWS, IPv6
        ("fd00:ec2::23/128", METADATA),  # AWS EKS Pod Identity, IPv6
        ("::/128", UNSPECIFIED),
        ("::1/128", LOOPBACK),
        ("100::/64", "discard-only"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("2001:2::/48", "benchmarking"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("fc00::/7", "unique local (private)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "deprecated site-local"),
        ("ff00::/8", "multicast"),
    )
)

_LOW32 = 0xFFFFFFFF
_COMPATIBLE_FROM = 2  # `::` and `::1` are IPv6's own unspecified and loopback addresses

# (network, name, how to extract the embedded IPv4 addresses as integers)
_EMBEDDING: tuple[tuple[IPv6Network, str, tuple[int, ...]], ...] = (
    (IPv6Network("::ffff:0:0/96"), "IPv4-mapped", (0,)),
    (IPv6Network("::ffff:0:0:0/96"), "IPv4-translated (SIIT)", (0,)),
    (IPv6Network("64:ff9b::/96"), "NAT64", (0,)),
    (IPv6Network("::/96"), "IPv4-compatible", (0,)),
    (IPv6Network("2002::/16"), "6to4", (80,)),
    (IPv6Network("2001::/32"), "Teredo", (-1, 64)),  # -1: client, inverted low 32 bits
)


def _embedded(ip: IPv6Address) -> list[tuple[str, IPv4Address]]:
    """The IPv4 addresses an IPv6 address carries, each with the form that carries it."""
    found: list[tuple[str, IPv4Address]] = []
    value = int(ip)
    for network, name, shifts in _EMBEDDING:
        if ip not in network:
            continue
        if name == "IPv4-compatible" and value < _COMPATIBLE_FROM:
            break
        for shift in shifts:
            if shift < 0:
                found.append((f"{name} client", IPv4Address(~value & _LOW32)))
            else:
                label = f"{name} server" if name == "Teredo" else name
                found.append((label, IPv4Address((value >> shift) & _LOW32)))
        break
    return found


# All IPv6 unicast is allocated from 2000::/3; outside it only the embedding forms may pass.
_GLOBAL_UNICAST = IPv6Network("2000::/3")


# the table as integer ranges, because `ip in network` is slow on a path taken per connection
_RANGES = tuple(
    (net.version, int(net.network_address), int(net.broadcast_address), net, label)
    for net, label in BLOCKED
)


def _lookup(ip: IPAddress) -> tuple[IPNetwork, str] | None:
    version, value = ip.version, int(ip)
    for net_version, low, high, network, label in _RANGES:
        if net_version == version and low <= value <= high:
            return network, label
    if isinstance(ip, IPv6Address) and ip not in _GLOBAL_UNICAST and not _embedded(ip):
        return _GLOBAL_UNICAST, "reserved, outside global unicast"
    return None


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason an address is refused: the (possibly embedded) address and its network."""

    address: IPAddress
    network: IPNetwork
    label: str
    via: str | None = None  # the IPv6 form that embeds `address`

    def describe(self) -> str:
        what = f"{self.label} ({self.network})"
        return f"{what} as the {self.via} address {self.address}" if self.via else what


def findings(ip: IPAddress) -> tuple[Finding, ...]:
    """Every reason `ip` is refused: its own network and those of the IPv4 addresses it embeds."""
    found: list[Finding] = []
    hit = _lookup(ip)
    if hit is not None:
        found.append(Finding(ip, *hit))
    if isinstance(ip, IPv6Address):
        for via, inner in _embedded(ip):
            hit = _lookup(inner)
            if hit is not None:
                found.append(Finding(inner, *hit, via=via))
    return tuple(found)


def classify(ip: IPAddress | str) -> str | None:
    """Why `ip` is refused by default, or None when it is an ordinary public address."""
    found = findings(_parse(ip) if isinstance(ip, str) else ip)
    return found[0].describe() if found else None


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    """What a hook may reach besides public addresses: private networks, loopback, listed CIDRs."""

    allow_private: bool = False
    allow_cidrs: tuple[IPNetwork, ...] = ()
    allow_loopback: bool = False

    @classmethod
    def from_config(
        cls,
        allow_private: bool = False,
        allow_cidrs: Iterable[str] = (),
        *,
        allow_loopback: bool = False,
    ) -> GuardPolicy:
        """Builds a policy from configuration values, naming the CIDR that does not parse."""
        networks: list[IPNetwork] = []
        for cidr in allow_cidrs:
            try:
                networks.append(ip_network(cidr, strict=False))
            except ValueError as exc:
                raise ConfigError(f"allow_cidrs: {cidr!r} is not a network: {exc}") from None
        return cls(
            allow_private=allow_private,
            allow_cidrs=tuple(networks),
            allow_loopback=allow_loopback,
        )

    def admits(self, finding: Finding) -> bool:
        """Whether this policy waives `finding` (its address is the one connected to)."""
        label, address = finding.label, finding.address
        if label in NEVER:
            return False
        if label == METADATA:
            return any(
                net.version == address.version and net.subnet_of(finding.network)  # type: ignore[arg-type]
                for net in self.allow_cidrs
            )
        if self.allow_loopback if label == LOOPBACK else self.allow_private:
            return True
        return any(net.version == address.version and address in net for net in self.allow_cidrs)


def _parse(address: str) -> IPAddress:
    try:
        return ip_address(address)
    except ValueError:
        raise BlockedDestination(f"{address!r} is not an IP address") from None


def check_addresses(
    host: str, addresses: Iterable[str | IPAddress], policy: GuardPolicy
) -> tuple[IPAddress, ...]:
    """The vetted addresses of `host`; raises BlockedDestination if any one of them is refused."""
    vetted: list[IPAddress] = []
    for raw in addresses:
        ip = _parse(raw) if isinstance(raw, str) else raw
        for finding in findings(ip):
            if not policy.admits(finding):
                raise BlockedDestination(_refusal(host, ip, finding))
        vetted.append(ip)
    return tuple(vetted)


def _refusal(host: str, ip: IPAddress, finding: Finding) -> str:
    target = f"{host} resolves to {ip}" if host != str(ip) else f"{ip}"
    if finding.label in NEVER:
        remedy = "nothing admits it: connecting there reaches the dispatcher's own machine"
    elif finding.label == METADATA:
        remedy = f"only an allow_cidrs entry naming it alone ({finding.network}) admits it"
    elif finding.label == LOOPBACK:
        remedy = (
            "to allow it, set allow_loopback: true on the hook or in the service "
            f"configuration, or add {finding.network} (or a narrower network) to allow_cidrs"
        )
    else:
        remedy = (
            "to allow it, set allow_private_networks: true on the hook or in the service "
            f"configuration, or add {finding.network} (or a narrower network) to allow_cidrs"
        )
    return f"destination refused: {target}, which is {finding.describe()}; {remedy}"


class Resolver(Protocol):
    """Turns a host name into the IP addresses (as strings) a connection may go to."""

    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo), run off the event loop by asyncio."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        return list(dict.fromkeys(str(info[4][0]) for info in infos))
