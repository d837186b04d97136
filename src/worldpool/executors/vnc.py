"""A watchable virtual screen: Xvfb on a free display number plus x11vnc on a free port.

Browser workers run Chromium headful on it so a person can follow a step live with any
VNC viewer. Both programs come from Debian (``xvfb``, ``x11vnc``). Xvfb picks its own free
display number (``-displayfd``), so two displays started at once never collide; x11vnc is
given a free TCP port and reports ``PORT=<n>`` on stdout once it accepts connections.

    async with VirtualDisplay(listen="127.0.0.1") as display:
        env = {"DISPLAY": display.display}   # start the headful program with this
        print(display.vnc_url)               # vnc://127.0.0.1:5901
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path
from types import TracebackType

from worldpool.errors import HandlerError

log = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT_S = 10.0
_PORT_ATTEMPTS = 3  # a port picked free can be taken before x11vnc binds it; try again
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _need(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise HandlerError(
            f"{binary} not found: install the Debian package {package!r} "
            "(apt-get install xvfb x11vnc) or run the browser headless",
            retryable=True,
        )
    return path


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _read_line(fd: int) -> bytes:
    """Read up to a newline or EOF. Xvfb may write the number and the newline separately,
    and dies if the pipe closes in between, so stopping at the first chunk is not enough."""
    data = b""
    while not data.endswith(b"\n") and len(data) < 64:
        chunk = os.read(fd, 64)
        if not chunk:
            break
        data += chunk
    return data


class VirtualDisplay:
    """Xvfb (and optionally x11vnc) for the lifetime of an ``async with`` block.

    ``listen`` is the address x11vnc binds (loopback by default: reach it through an SSH
    tunnel, or pass ``"0.0.0.0"`` together with ``password_file``); ``public_host`` is the
    host written into :attr:`vnc_url` (default: ``listen``, or this machine's name when
    listening on every interface). ``password_file`` is a file made with
    ``x11vnc -storepasswd``; without one the server takes no password, so a warning is
    logged unless it only listens on loopback. Viewers cannot type or click unless
    ``view_only`` is False.
    """

    def __init__(
        self,
        *,
        width: int = 1280,
        height: int = 800,
        depth: int = 24,
        vnc: bool = True,
        listen: str = "127.0.0.1",
        public_host: str | None = None,
        password_file: Path | None = None,
        view_only: bool = True,
        start_timeout_s: float = DEFAULT_START_TIMEOUT_S,
    ) -> None:
        self.width, self.height, self.depth = width, height, depth
        self.vnc = vnc
        self.listen = listen
        self.public_host = public_host
        self.password_file = password_file
        self.view_only = view_only
        self.start_timeout_s = start_timeout_s
        self.display: str | None = None
        self.vnc_port: int | None = None
        self._xvfb: asyncio.subprocess.Process | None = None
        self._x11vnc: asyncio.subprocess.Process | None = None
        self._logdir: tempfile.TemporaryDirectory[str] | None = None

    # ------------------------------------------------------------------ public
    @property
    def vnc_url(self) -> str | None:
        """``vnc://<host>:<port>`` once x11vnc runs, else None."""
        if self.vnc_port is None:
            return None
        host = self.public_host
        if host is None:
            host = socket.gethostname() if self.listen in {"0.0.0.0", "::"} else self.listen
        if ":" in host:
            host = f"[{host}]"
        return f"vnc://{host}:{self.vnc_port}"

    async def start(self) -> None:
        """Start Xvfb, then x11vnc; on any failure stop what started and raise HandlerError."""
        self._logdir = tempfile.TemporaryDirectory(prefix="worldpool-display-")
        try:
            await self._start_xvfb()
            if self.vnc:
                await self._start_x11vnc()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop x11vnc and Xvfb (terminate, then kill after 5 s). Safe to call twice."""
        for proc in (self._x11vnc, self._xvfb):
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 5.0)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    await proc.wait()
        self._x11vnc = self._xvfb = None
        self.vnc_port = None
        self.display = None
        if self._logdir is not None:
            self._logdir.cleanup()
            self._logdir = None

    async def __aenter__(self) -> VirtualDisplay:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ internals
    def _log_path(self, name: str) -> Path:
        assert self._logdir is not None
        return Path(self._logdir.name) / name

    def _tail(self, name: str) -> str:
        try:
            text = self._log_path(name).read_text(errors="replace").strip()
        except OSError:
            return ""
        return " | ".join(text.splitlines()[-5:])[-600:]

    async def _start_xvfb(self) -> None:
        binary = _need("Xvfb", "xvfb")
        read_fd, write_fd = os.pipe()
        try:
            with self._log_path("xvfb.log").open("wb") as err:
                self._xvfb = await asyncio.create_subprocess_exec(
                    binary,
                    "-displayfd",
                    str(write_fd),
                    "-screen",
                    "0",
                    f"{self.width}x{self.height}x{self.depth}",
                    "-nolisten",
                    "tcp",
                    pass_fds=(write_fd,),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=err,
                )
            os.close(write_fd)
            write_fd = -1
            # Xvfb writes the display number once it accepts clients; EOF means it died.
            reader = asyncio.ensure_future(asyncio.to_thread(_read_line, read_fd))
            done, _ = await asyncio.wait({reader}, timeout=self.start_timeout_s)
            if not done:
                self._xvfb.kill()  # closes its end of the pipe, which ends the read
            raw = await reader
        finally:
            if write_fd >= 0:
                os.close(write_fd)
            os.close(read_fd)
        number = raw.decode(errors="replace").strip()
        if not number.isdigit():
            raise HandlerError(
                f"Xvfb did not start within {self.start_timeout_s:g}s: {self._tail('xvfb.log')}",
                retryable=True,
            )
        self.display = f":{number}"
        log.info("Xvfb running on display %s", self.display)

    async def _start_x11vnc(self) -> None:
        binary = _need("x11vnc", "x11vnc")
        assert self.display is not None
        auth = ["-rfbauth", str(self.password_file)] if self.password_file else ["-nopw"]
        if self.password_file is None and self.listen not in _LOOPBACK:
            log.warning("x11vnc listens on %s without a password; anyone can watch", self.listen)
        for _ in range(_PORT_ATTEMPTS):
            port = _free_port(self.listen)
            out = self._log_path("x11vnc.log")
            with out.open("wb") as sink:
                proc = await asyncio.create_subprocess_exec(
                    binary,
                    "-display",
                    self.display,
                    "-rfbport",
                    str(port),
                    "-listen",
                    self.listen,
                    "-forever",
                    "-shared",
                    "-noxdamage",
                    "-quiet",
                    *auth,
                    *(["-viewonly"] if self.view_only else []),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=sink,
                    stderr=sink,
                )
            self._x11vnc = proc
            if await self._wait_for_port_line(proc, out):
                self.vnc_port = port
                log.info("x11vnc serving %s on %s:%d", self.display, self.listen, port)
                return
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
            self._x11vnc = None
        raise HandlerError(f"x11vnc did not start: {self._tail('x11vnc.log')}", retryable=True)

    async def _wait_for_port_line(self, proc: asyncio.subprocess.Process, out: Path) -> bool:
        """True once x11vnc prints ``PORT=<n>`` (it then accepts connections).

        Its output goes to a file rather than a pipe, so nothing has to keep draining it.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.start_timeout_s
        while loop.time() < give_up and proc.returncode is None:
            if b"\nPORT=" in b"\n" + out.read_bytes():  # noqa: ASYNC240 - a small local file
                return True
            await asyncio.sleep(0.05)
        return False
