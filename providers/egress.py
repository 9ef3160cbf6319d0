"""Where a namespace's providers and callbacks may connect (DESIGN.md §7.1).

A policy is data: URL prefixes `scheme://host[:port][/path]` (`host` may be
`*.domain`, matching any name below that domain), plus the addresses nobody may
reach by name (link-local, the daemon's own listen addresses). Two checks:

- `check_url(url)`: before every request and every redirect hop. With prefixes,
  the URL must fall under one; without, anything goes. A URL naming an IP
  literal is also an address check (no DNS happens for it). What a URL was
  allowed by is remembered per policy (see `_Allowed`): the next URL with the
  same scheme, host and port (and path, when a prefix names one) costs a
  dictionary lookup, and an IP literal's (ip, port) is still looked up in the
  daemon's listen addresses every time (they are filled in once it binds).
- `check_address(ip, port)`: after DNS, for every address about to be connected
  to (the resolver in providers/http.py filters through it). Link-local and the
  daemon itself are refused unless a prefix names that IP literally: a name
  that resolves there (DNS rebinding) never reaches them.

A refusal is an EgressRefused naming the namespace and the rule that refused.
Pure: no DNS, no sockets, no clock.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from providers.base import ProviderError

_DEFAULT_PORTS = {"http": 80, "https": 443}
# URLs whose decision is remembered per policy, at most (then the memory starts over).
_ALLOWED_KEPT = 4096
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
LINK_LOCAL = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fe80::/10"))


class EgressRefused(ProviderError):
    """The egress policy refused a target; the message names the rule."""


@dataclass(frozen=True, slots=True)
class UrlPrefix:
    text: str
    scheme: str
    host: str  # lower case; "*.example.com" for a wildcard; IPv6 without brackets
    port: int
    path: str  # "" or "/a/b" (no trailing slash)

    def matches(self, scheme: str, host: str, port: int, path: str) -> bool:
        if scheme != self.scheme or port != self.port:
            return False
        if self.host.startswith("*."):
            if not host.endswith(self.host[1:]) or host == self.host[2:]:
                return False
        elif host != self.host:
            return False
        return not self.path or path == self.path or path.startswith(self.path + "/")

    @property
    def ip(self) -> IPAddress | None:
        return _ip(self.host)


def _ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def parse_prefix(text: str) -> UrlPrefix:
    """One egress entry; ValueError says what is wrong with it."""
    if not isinstance(text, str) or "://" not in text:
        raise ValueError(f"{text!r} is not a URL prefix scheme://host[:port][/path]")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{text!r}: scheme must be http or https")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{text!r}: a prefix has no user, query or fragment")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError(f"{text!r}: no host")
    if "*" in host and (not host.startswith("*.") or "*" in host[2:] or len(host) < 3):
        raise ValueError(f"{text!r}: a wildcard host is written *.domain")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{text!r}: bad port") from None
    return UrlPrefix(
        text=text,
        scheme=scheme,
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        path=parts.path.rstrip("/"),
    )


def _listen_addresses(listen: Iterable[tuple[str, int]]) -> frozenset[tuple[IPAddress, int]]:
    out: set[tuple[IPAddress, int]] = set()
    for host, port in listen:
        ip = _ip(host)
        if ip is None:
            continue
        out.add((ip, port))
        if ip.is_unspecified or ip.is_loopback:
            # Bound to every interface: loopback and "0.0.0.0" (Linux connects that
            # to the local host) reach it; a named interface address is added by the
            # caller, who knows the host's addresses.
            for other in ("127.0.0.1", "::1", "0.0.0.0", "::"):
                out.add((ipaddress.ip_address(other), port))
    return frozenset(out)


class ListenAddresses:
    """The daemon's own (ip, port) pairs, filled in once it has bound (port 0 included).

    Shared by every namespace's policy of one daemon, and compared by identity, so
    policies built before the daemon binds see its addresses once it has.
    """

    __slots__ = ("_addresses",)

    def __init__(self, listen: Iterable[tuple[str, int]] = ()) -> None:
        self._addresses = _listen_addresses(listen)

    def update(self, listen: Iterable[tuple[str, int]]) -> None:
        self._addresses = self._addresses | _listen_addresses(listen)

    def __contains__(self, item: object) -> bool:
        return item in self._addresses

    def __repr__(self) -> str:
        return f"ListenAddresses({sorted(str(a) + ':' + str(p) for a, p in self._addresses)})"


@dataclass(frozen=True, slots=True)
class EgressPolicy:
    """What one namespace may reach. `prefixes` None: everything but the always-denied."""

    namespace: str = ""
    prefixes: tuple[UrlPrefix, ...] | None = None
    # The daemon's own (ip, port) pairs: a frozenset or a shared ListenAddresses.
    denied: Container[tuple[IPAddress, int]] = frozenset()
    # URL key (see _url_key) -> the (ip, port) an allowed URL names literally, or None
    # for a host name (its addresses are checked after DNS). Not an init field, so
    # dataclasses.replace() of a policy never shares another policy's decisions.
    _allowed: dict[str, tuple[IPAddress, int] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )

    @classmethod
    def build(
        cls,
        namespace: str,
        prefixes: Iterable[str] | None,
        listen: Iterable[tuple[str, int]] | ListenAddresses = (),
    ) -> EgressPolicy:
        parsed = None if prefixes is None else tuple(parse_prefix(p) for p in prefixes)
        denied = listen if isinstance(listen, ListenAddresses) else _listen_addresses(listen)
        return cls(namespace, parsed, denied)

    def _where(self) -> str:
        return f" for namespace {self.namespace!r}" if self.namespace else ""

    def check_url(self, url: str) -> None:
        """Raise EgressRefused unless the policy lets a request go to `url`."""
        key = self._url_key(url)
        if key is not None:
            allowed = self._allowed
            if key in allowed:
                literal = allowed[key]
                if literal is None or literal not in self.denied:
                    return
                # Listed as the daemon's own address since it was allowed: decide
                # afresh, which raises with the full message.
        literal = self._decide(url)
        if key is not None:
            allowed = self._allowed
            if len(allowed) >= _ALLOWED_KEPT:
                allowed.clear()
            allowed[key] = literal

    def _url_key(self, url: str) -> str | None:
        """The part of `url` the decision depends on, or None: not remembered.

        Only plain http(s) URLs are remembered; for them everything the decision reads
        (scheme, host, port, and the path when a prefix has one) lies before the first
        '/?#' after the scheme (before the first '?#' when the path counts). Anything
        urlsplit would treat specially (tabs and newlines it removes, leading blanks,
        upper-case schemes) is decided afresh every time.
        """
        if url.startswith("http://"):
            start = 7
        elif url.startswith("https://"):
            start = 8
        else:
            return None
        if "\t" in url or "\n" in url or "\r" in url:
            return None
        needs_path = self.prefixes is not None and any(p.path for p in self.prefixes)
        end = len(url)
        for separator in "?#" if needs_path else "/?#":
            found = url.find(separator, start)
            if found != -1 and found < end:
                end = found
        return url[:end]

    def _decide(self, url: str) -> tuple[IPAddress, int] | None:
        """The full check; the (ip, port) named literally by an allowed URL, else None."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise EgressRefused(f"egress refused{self._where()}: {url!r} is not a URL") from None
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        if scheme not in _DEFAULT_PORTS or not host:
            raise EgressRefused(
                f"egress refused{self._where()}: {_shown(url)} is not an http(s) URL with a host"
            )
        port = port if port is not None else _DEFAULT_PORTS[scheme]
        if self.prefixes is not None and not any(
            p.matches(scheme, host, port, parts.path or "/") for p in self.prefixes
        ):
            allowed = ", ".join(p.text for p in self.prefixes) or "nothing"
            raise EgressRefused(
                f"egress refused{self._where()}: {_shown(url)} is not under any allowed "
                f"prefix (egress: {allowed})"
            )
        ip = _ip(host)
        if ip is None:
            return None
        self.check_address(str(ip), port, target=url)
        return _unmapped(ip), port

    def check_address(self, ip: str, port: int, target: str = "") -> None:
        """Raise EgressRefused if connecting to (ip, port) breaks an always-on rule."""
        found = _ip(ip.split("%", 1)[0])
        if found is None:
            return
        address = _unmapped(found)
        if self.prefixes is not None and any(p.ip == address for p in self.prefixes):
            return
        shown = _shown(target) + f" ({address})" if target else str(address)
        if any(address in net for net in LINK_LOCAL):
            raise EgressRefused(
                f"egress refused{self._where()}: {shown} is link-local "
                "(169.254.0.0/16, fe80::/10 are never reachable unless an egress prefix "
                "names the address)"
            )
        if (address, port) in self.denied:
            raise EgressRefused(
                f"egress refused{self._where()}: {shown} is the daemon's own listen address"
            )


def _unmapped(address: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address as the IPv4 address it stands for."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _shown(url: str) -> str:
    """The URL without its query and user info (they may carry credentials)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc.rpartition("@")[2]
    query = "?..." if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


ALLOW_ALL = EgressPolicy()
