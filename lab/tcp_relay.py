"""A TCP relay: accept on one address, forward each connection to another.

    python -m lab.tcp_relay 10.77.0.1:3001 127.0.0.1:3001

Lets a service that listens on a single address (Uptime Kuma on loopback) be
reached on a second one (the lab bridge) without binding 0.0.0.0. Bytes are
copied both ways unchanged, so HTTP and WebSocket traffic both pass. Runs
until SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

_CHUNK = 64 * 1024


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT such as 127.0.0.1:3001, got {text!r}")
    return host, int(port)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        # half-close: the other direction may still be sending
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def _serve_one(target: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        up_reader, up_writer = await asyncio.open_connection(*target)
    except OSError:
        writer.close()
        return
    try:
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
    finally:
        for w in (writer, up_writer):
            w.close()


async def relay(listen: tuple[str, int], target: tuple[str, int]) -> None:
    server = await asyncio.start_server(lambda r, w: _serve_one(target, r, w), *listen, reuse_address=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    async with server:
        await stopped.wait()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        if len(args) != 2:
            raise ValueError("usage: python -m lab.tcp_relay LISTEN_HOST:PORT TARGET_HOST:PORT")
        listen, target = _address(args[0]), _address(args[1])
        asyncio.run(relay(listen, target))
    except (ValueError, OSError) as exc:
        print(f"tcp_relay: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
