"""`yikatong reader --api URL --terminal-key-file F`: run the reader bridge until stopped."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from devices import __version__

log = logging.getLogger("yikatong.reader")


class KeyFile:
    """The terminal key, read from its file; read again when the file changes (a rotated key
    written by the operator is picked up without a restart)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mtime = 0.0
        self._key = ""
        self.reload()
        if not self._key:
            raise ValueError(f"{path} holds no terminal key")

    def reload(self) -> bool:
        """True when the key changed."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError as exc:
            log.warning("terminal key file unreadable: %s", exc)
            return False
        if mtime == self._mtime and self._key:
            return False
        self._mtime = mtime
        key = self.path.read_text().strip()
        changed = key != self._key
        self._key = key
        return changed

    def __call__(self) -> str:
        return self._key


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", required=True, help="the API, e.g. https://pay.example.com")
    parser.add_argument(
        "--terminal-key-file", required=True, type=Path, help="file holding the terminal key"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("YIKATONG_READER_STATE", ".yikatong-reader")),
        help="where taps wait while the API is unreachable (default .yikatong-reader)",
    )
    parser.add_argument("--heartbeat-seconds", type=float, default=30.0)
    parser.add_argument("--log-level", default=os.environ.get("YIKATONG_LOG_LEVEL", "INFO"))


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=str(args.log_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        import httpx  # noqa: F401
        import smartcard  # noqa: F401

        from devices.api import ApiClient
        from devices.bridge import BridgeSettings, ReaderBridge
        from devices.pcsc import PcscMonitors
        from devices.queue import TapQueue
    except ImportError as exc:
        print(
            f"the reader bridge needs the `devices` extra ({exc}): pip install 'yikatong[devices]'"
            " (pyscard builds against libpcsclite-dev with swig)",
            file=sys.stderr,
        )
        return 2
    try:
        key = KeyFile(args.terminal_key_file)
    except (OSError, ValueError) as exc:
        print(f"terminal key: {exc}", file=sys.stderr)
        return 2
    queue = TapQueue(args.state_dir / "taps.sqlite3")
    api = ApiClient(args.api, key, app_version=f"yikatong-reader/{__version__}")
    bridge = ReaderBridge(
        api,
        queue,
        PcscMonitors,
        BridgeSettings(heartbeat_seconds=args.heartbeat_seconds),
        reload_key=key.reload,
    )
    print(
        f"reader bridge -> {api.url}  (queue {queue.path}, {len(queue)} taps waiting)",
        file=sys.stderr,
        flush=True,
    )

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, bridge.stop)
        try:
            await bridge.run()
        finally:
            await api.close()
            queue.close()

    asyncio.run(main())
    return 0
