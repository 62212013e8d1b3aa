"""Requests to addresses an admin typed (webhook endpoints): the public internet only, never our
own network.

A URL that names, or resolves to, a loopback, private, link-local, carrier-grade, unique-local,
multicast or otherwise non-global address (in any of its spellings: ``127.1``, ``0x7f000001``,
``2130706433``, ``0177.0.0.1``, ``[::ffff:127.0.0.1]`` all resolve to 127.0.0.1), a cloud's
metadata name, or one that carries credentials, is refused when it is added (``check_url``),
and again when a request is made, against the address the socket actually connected to
(``post``): a name that resolved to a public address when it was added and to 10.0.0.1 later
(DNS rebinding) is refused before a byte is sent.

An on-premises deployment names the internal hosts (or networks) it allows
(``INBOXCRM_WEBHOOKS_ALLOW_HOSTS``). An attempt's outcome is kept as a category (``outcome``):
"timed out", "connection refused", "answered 404", never the exception's own text, which would
tell a prober an open port from a closed one.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from services.errors import DomainError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Names that reach a cloud's instance metadata or the local machine, whatever they resolve to.
METADATA_NAMES = frozenset(
    {
        "metadata.google.internal",
        "metadata.goog",
        "metadata",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.azure.com",
        "localhost",
    }
)
_INTERNAL_SUFFIXES = (".internal", ".local", ".localhost", ".localdomain", ".home.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class NotPublic(OSError):
    """A connection was made, or would be, to an address the deployment does not allow."""


@dataclass(frozen=True)
class Reach:
    """Where outbound requests may go: public addresses, and the internal hosts and networks
    this deployment names. ``resolve`` is ``socket.getaddrinfo`` (a test hands another)."""

    allow_http: bool = False
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    resolve: Callable[..., Any] = field(default=socket.getaddrinfo, compare=False)

    @classmethod
    def from_setting(cls, allowed: str | Iterable[str] = "", *, allow_http: bool = False) -> Reach:
        """``INBOXCRM_WEBHOOKS_ALLOW_HOSTS``: host names and networks (``10.1.0.0/16``), comma or
        space separated."""
        items = allowed.replace(",", " ").split() if isinstance(allowed, str) else list(allowed)
        hosts, networks = set(), []
        for item in items:
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                hosts.add(item.strip().lower().rstrip("."))
        return cls(allow_http, frozenset(hosts), tuple(networks))

    def permits(self, host: str, address: str) -> bool:
        """Whether a request for ``host`` may be connected to ``address``."""
        if host.lower().strip("[]").rstrip(".") in self.hosts:
            return True
        ip = _plain(address)
        if ip is None:
            return False
        return any(ip in network for network in self.networks) or is_public(ip)


def _plain(address: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if ip.sixtofour is not None:
            return ip.sixtofour
    return ip


def is_public(ip: IPAddress) -> bool:
    """A globally routable unicast address (``is_global`` leaves out loopback, private,
    link-local, 100.64/10, unique-local, documentation and reserved ranges)."""
    return ip.is_global and not ip.is_multicast


def _refuse(message: str) -> DomainError:
    return DomainError(message, {"url": [message]})


def check_url(url: str | None, reach: Reach) -> str:
    """The URL as given, if requests to it may be made; else a DomainError that says why."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise _refuse("That is not a web address.") from None
    schemes = ("https", "http") if reach.allow_http else ("https",)
    if len(url) > 500 or parts.scheme not in schemes or not host:
        raise _refuse("Give the endpoint's address, starting with https://.")
    if parts.username is not None or parts.password is not None:
        raise _refuse("Leave credentials out of the address: every delivery is signed instead.")
    name = host.lower().rstrip(".")
    if name in reach.hosts:
        return url
    if name in METADATA_NAMES or name.endswith(_INTERNAL_SUFFIXES):
        raise _refuse("That address is inside a private network: give a public one.")
    try:
        found = reach.resolve(name, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _refuse("That host name does not resolve: check it.") from None
    addresses = {info[4][0] for info in found}
    if not addresses or not all(reach.permits(name, address) for address in addresses):
        raise _refuse("That address is inside a private network: give a public one.")
    return url


# -- making the request ---------------------------------------------------------------------------------


def _checked(sock: socket.socket, host: str, reach: Reach) -> socket.socket:
    address = sock.getpeername()[0]
    if not reach.permits(host, address):
        sock.close()
        raise NotPublic("not a public address")
    return sock


class _Adapter(HTTPAdapter):
    """requests' adapter whose connections check the address they reached before any byte is
    sent (and so before TLS)."""

    def __init__(self, reach: Reach) -> None:
        class Http(HTTPConnection):
            def _new_conn(self) -> socket.socket:
                return _checked(super()._new_conn(), self.host, reach)

        class Https(HTTPSConnection):
            def _new_conn(self) -> socket.socket:
                return _checked(super()._new_conn(), self.host, reach)

        self._pools = {
            "http": type("HttpPool", (HTTPConnectionPool,), {"ConnectionCls": Http}),
            "https": type("HttpsPool", (HTTPSConnectionPool,), {"ConnectionCls": Https}),
        }
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools


def http_session(reach: Reach) -> requests.Session:
    """A requests session that reaches only what ``reach`` permits: no proxy from the
    environment (a proxy would connect for us, past the check), no redirects followed."""
    session = requests.Session()
    session.trust_env = False
    adapter = _Adapter(reach)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def poster(reach: Reach) -> Callable[..., requests.Response]:
    """``requests.post``'s shape, through a session that reaches only what ``reach`` permits."""
    session = http_session(reach)

    def post(url: str, **kwargs: Any) -> requests.Response:
        kwargs["allow_redirects"] = False
        return session.post(url, **kwargs)

    return post


def _causes(failure: BaseException) -> list[BaseException]:
    """The failure and what lies under it (requests wraps urllib3's errors, which wrap the OS's)."""
    found: list[BaseException] = []
    current: Any = failure
    while isinstance(current, BaseException) and current not in found and len(found) < 12:
        found.append(current)
        current = (
            current.__cause__
            or getattr(current, "reason", None)
            or current.__context__
            or next((a for a in current.args if isinstance(a, BaseException)), None)
        )
    return found


def outcome(failure: BaseException | None = None, status_code: int | None = None) -> str:
    """An attempt's outcome as a category a person reads, never the exception's text."""
    if failure is None:
        return f"answered {status_code}"
    causes = _causes(failure)
    if any(isinstance(c, NotPublic) for c in causes):
        return "refused: not a public address"
    if any(isinstance(c, (requests.Timeout, socket.timeout, TimeoutError)) for c in causes):
        return "timed out"
    if any(
        isinstance(c, requests.exceptions.SSLError) or type(c).__name__ in ("SSLError", "SSLCertVerificationError")
        for c in causes
    ):
        return "TLS failed"
    if any(isinstance(c, socket.gaierror) or "NameResolution" in type(c).__name__ for c in causes):
        return "name did not resolve"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "connection refused"
    if any(isinstance(c, (requests.ConnectionError, OSError)) for c in causes):
        return "connection failed"
    return "failed"
