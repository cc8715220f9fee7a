"""Which web pages may connect to the viewer: its own page, served from this machine, and no other.

A browser tells the server which page opened a connection in the ``Origin`` header
(``scheme://host:port``). The viewer accepts a connection when that header is absent (a client that is not a
browser page) or names the viewer's own page: an ``http``/``https`` origin whose host is a loopback name of
this machine (``127.0.0.1``, ``localhost``, ``[::1]``) or the address the viewer is bound to, and whose port
is the port it serves. Origins passed with ``gen3d view --allow-origin`` are accepted too. Host names other
than these are never trusted, so a page that renames itself (DNS rebinding) is refused as well.

Only the standard library is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from gen3d.errors import InputError

DEFAULT_PORTS = {"http": 80, "https": 443}
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")

Origin = tuple[str, str, int]


def parse_origin(text: str) -> Origin | None:
    """Split a web origin into ``(scheme, host, port)``, lower-cased, with the scheme's default port filled in.

    Args:
        text: an origin such as ``http://127.0.0.1:8080`` (a single trailing ``/`` is tolerated).

    Returns:
        The parts, or None when ``text`` is not an ``http``/``https`` origin (``null``, a path, credentials,
        a bad port).
    """
    value = text.strip().lower()
    if value.endswith("/"):
        value = value[:-1]
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return parts.scheme, parts.hostname, DEFAULT_PORTS[parts.scheme] if port is None else port


def check_origin(text: str) -> str:
    """Validate an origin to allow (``gen3d view --allow-origin``).

    Args:
        text: ``scheme://host[:port]``, e.g. ``http://192.168.1.20:8080``.

    Returns:
        ``text`` unchanged.

    Raises:
        InputError: when ``text`` is not an ``http``/``https`` origin.
    """
    if parse_origin(text) is None:
        raise InputError(f"invalid origin {text!r}; expected http://HOST:PORT or https://HOST:PORT")
    return text


def _host_name(host: str) -> str:
    return host.strip().lower().removeprefix("[").removesuffix("]")


def origin_allowed(origin: str | None, host: str, port: int, extra: Iterable[str] = ()) -> bool:
    """Whether a connection whose ``Origin`` header is ``origin`` may talk to the viewer.

    Args:
        origin: the ``Origin`` header, or None when the request has none.
        host: the address the viewer is bound to.
        port: the port the viewer serves.
        extra: further origins to accept (``--allow-origin``).

    Returns:
        True for no origin, for the viewer's own page on a loopback name or the bound host and the served
        port, and for an origin listed in ``extra``; False for everything else, ``null`` included.
    """
    if origin is None:
        return True
    parsed = parse_origin(origin)
    if parsed is None:
        return False
    _scheme, origin_host, origin_port = parsed
    own_hosts = {*LOOPBACK_NAMES, _host_name(host)}
    if origin_host in own_hosts and origin_port == port:
        return True
    return any(parsed == parse_origin(allowed) for allowed in extra)
