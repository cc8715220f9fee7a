"""Network side of the viewer: checking the address before serving, and refusing connections from other sites.

:func:`probe_host` resolves and test-binds the address first, so an address this machine cannot listen on is
a one-line :class:`gen3d.errors.InputError` instead of a server that never comes up.
:func:`install_origin_guard` puts :func:`gen3d.viewer.origins.origin_allowed` in front of the viser server's
request handler: every HTTP request and websocket handshake whose ``Origin`` is not allowed is answered with
``403 Forbidden`` before viser sees it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from gen3d.errors import Gen3DError, InputError

RESOLVE_TIMEOUT = 5.0
HOOK_TIMEOUT = 5.0


def _resolve(host: str, port: int, timeout: float) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo`` for a listening socket, given up after ``timeout`` seconds."""
    result: dict[str, Any] = {}

    def lookup() -> None:
        try:
            result["infos"] = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        except OSError as exc:
            result["error"] = exc

    worker = threading.Thread(target=lookup, name="gen3d-viewer-resolve", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise InputError(f"cannot serve the viewer on {host} port {port}: looking up the host timed out")
    if "error" in result:
        reason = result["error"].strerror or result["error"]
        raise InputError(f"cannot serve the viewer on {host} port {port}: unknown host ({reason})")
    return result["infos"]


def probe_host(host: str, port: int, timeout: float = RESOLVE_TIMEOUT) -> list[str]:
    """Check that the viewer can listen on ``host``: resolve it and bind each of its addresses once.

    The test binds use a free port, so a busy ``port`` is not an error (the server moves to the next one).

    Args:
        host: the interface to bind (a name or an address; empty for all interfaces).
        port: the port that will be served (named in the error message).
        timeout: seconds to wait for the host name to resolve.

    Returns:
        The addresses ``host`` resolves to.

    Raises:
        InputError: when ``host`` does not resolve or one of its addresses cannot be bound here.
    """
    addresses = []
    for family, kind, proto, _name, sockaddr in _resolve(host, port, timeout):
        try:
            sock = socket.socket(family, kind, proto)
        except OSError:  # an address family this machine does not support; the server skips it too
            continue
        with sock:
            try:
                sock.bind(sockaddr)
            except OSError as exc:
                raise InputError(
                    f"cannot serve the viewer on {host} port {port}: {exc.strerror or exc} "
                    "(use an address of this machine, e.g. 127.0.0.1)"
                ) from None
        addresses.append(sockaddr[0])
    if not addresses:
        raise InputError(f"cannot serve the viewer on {host} port {port}: no usable address")
    return addresses


def is_loopback(addresses: list[str]) -> bool:
    """Whether every address is a loopback address (only this machine can connect)."""
    return all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses)


def origin_guard(handler: Callable[..., Any] | None, allowed: Callable[[str | None], bool]) -> Callable[..., Any]:
    """Wrap a websockets ``process_request`` hook so that requests from a foreign ``Origin`` get 403.

    Args:
        handler: the server's own hook (viser serves its web client from it), or None.
        allowed: decides on the ``Origin`` header (None when the request has none).

    Returns:
        The new hook.
    """

    def process_request(connection: Any, request: Any) -> Any:
        origins = request.headers.get_all("Origin")
        if len(origins) > 1 or not allowed(origins[0] if origins else None):
            return connection.respond(HTTPStatus.FORBIDDEN, "Connections from other sites are not allowed.\n")
        return None if handler is None else handler(connection, request)

    return process_request


def _guard_on_loop(viser_server: Any, allowed: Callable[[str | None], bool]) -> bool:
    """Put the origin guard in front of viser's ``websockets`` server and drop every earlier connection.

    Runs as one step of viser's event loop (no ``await`` in it): a connection registered before the swap (open, or
    still in its handshake with the old hook) is aborted; one registered after it handshakes through the guard.
    viser keeps the server as a local of the coroutine that serves; it is found there.

    Returns:
        False when no ``websockets`` server was found (nothing was changed).
    """
    from websockets.asyncio.server import Server

    async def guard() -> bool:
        for task in asyncio.all_tasks():
            coro = task.get_coro()
            while coro is not None:
                frame = getattr(coro, "cr_frame", None)
                found = [v for v in (frame.f_locals.values() if frame else ()) if isinstance(v, Server)]
                if found:
                    server = found[0]
                    server.process_request = origin_guard(server.process_request, allowed)
                    for connection in tuple(server.handlers):
                        connection.transport.abort()
                    return True
                coro = getattr(coro, "cr_await", None)
        return False

    loop = viser_server._websock_server._background_event_loop
    return asyncio.run_coroutine_threadsafe(guard(), loop).result(timeout=HOOK_TIMEOUT)


def install_origin_guard(viser_server: Any, allowed: Callable[[str | None], bool]) -> None:
    """Make a started viser server answer requests whose ``Origin`` is not ``allowed`` with 403.

    Call it right after the server starts, before the panel is built. Connections that reached the server
    before the guard (open ones and ones still in their handshake) are aborted, in the same event-loop step that
    installs it, so every connection that remains passed the guard.

    Args:
        viser_server: a running ``viser.ViserServer``.
        allowed: decides on the ``Origin`` header (see :func:`gen3d.viewer.origins.origin_allowed`).

    Raises:
        Gen3DError: when the server's request hook cannot be found (an unsupported viser version); the
            viewer does not serve unguarded.
    """
    if not _guard_on_loop(viser_server, allowed):
        raise Gen3DError("the viewer cannot restrict connections with this version of viser")
