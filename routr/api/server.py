"""The API served by an embedded ``uvicorn.Server`` on the server's own loop.

uvicorn's ``serve()`` would take SIGINT/SIGTERM for itself; routr-server owns them and
stops the API in its own graceful drain, so only uvicorn's startup, tick loop and
shutdown are used.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from pathlib import Path

import uvicorn

from .app import create_app
from .certs import self_signed
from .context import ApiContext

log = logging.getLogger("routr.api")

DRAIN_SECONDS = 5


class CertificateError(Exception):
    """The API's certificate or key cannot be used; the text says which and why."""


class ApiServer:
    def __init__(self, ctx: ApiContext, *, cert_folder: Path) -> None:
        self.ctx = ctx
        self.cert_folder = cert_folder
        self.scheme = "http"
        self.host = ctx.config.spec.rest_service.bind_addr
        self.port = ctx.config.spec.rest_service.port
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._ticks: asyncio.Task[None] | None = None

    def _bind(self) -> socket.socket:
        """Raises OSError (the address in use, not ours) for the caller to word."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(1024)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    async def start(self) -> None:
        rest = self.ctx.config.spec.rest_service
        cert_file, key_file = rest.cert_file, rest.key_file
        if not rest.plain_http:
            self.scheme = "https"
            if not (cert_file and key_file):
                made = await asyncio.to_thread(self_signed, self.cert_folder, self.host)
                cert_file, key_file = str(made[0]), str(made[1])
        elif rest.unsecured:
            cert_file = key_file = None
        config = uvicorn.Config(
            create_app(self.ctx),
            log_config=None,
            access_log=False,  # ?token= would be in it
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=DRAIN_SECONDS,
            ssl_certfile=cert_file if self.scheme == "https" else None,
            ssl_keyfile=key_file if self.scheme == "https" else None,
        )
        try:
            config.load()
        except (OSError, ssl.SSLError) as exc:
            where = f"{cert_file} / {key_file}"
            raise CertificateError(f"restService certFile/keyFile {where}: {exc}") from None
        self._socket = self._bind()
        self.port = self._socket.getsockname()[1]
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[self._socket])
        self._server = server
        self._ticks = asyncio.get_running_loop().create_task(server.main_loop())

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    async def stop(self) -> None:
        """No new requests; open watch and follow streams end; the rest finish in time."""
        self.ctx.stopping.set()
        server = self._server
        if server is None:
            return
        server.should_exit = True
        if self._ticks is not None:
            await self._ticks
        await server.shutdown(sockets=[self._socket] if self._socket else None)
        self._server = None
