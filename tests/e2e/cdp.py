"""Headless Debian `chromium` driven over the DevTools protocol (a websocket from aiohttp).

No driver binary and no browser download: `chromium --remote-debugging-port=0`
writes its port to DevToolsActivePort in the profile; one page target, attached
flat. Page loads, Runtime.evaluate (real JS), screenshots, and the bytes each
request transferred (Network.*). The browser is stopped by its own process group.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
]


class Page:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session_id: str) -> None:
        self._ws = ws
        self._session = session_id
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: list[tuple[str, dict[str, Any]]] = []
        self._loaded = asyncio.Event()
        self.transfer: dict[str, int] = {}  # requestId -> encoded bytes received
        self.urls: dict[str, str] = {}

    async def reader(self) -> None:
        async for message in self._ws:
            data = message.json()
            if "id" in data and data["id"] in self._waiting:
                self._waiting.pop(data["id"]).set_result(data)
                continue
            method, params = data.get("method", ""), data.get("params", {})
            if method == "Page.loadEventFired":
                self._loaded.set()
            elif method == "Network.requestWillBeSent":
                self.urls[params["requestId"]] = params["request"]["url"]
            elif method == "Network.dataReceived":
                rid = params["requestId"]
                self.transfer[rid] = self.transfer.get(rid, 0) + params["encodedDataLength"]
            elif method == "Network.responseReceived":
                rid = params["requestId"]
                headers = params["response"].get("headersText") or ""
                self.transfer[rid] = self.transfer.get(rid, 0) + len(headers)
            elif method == "Network.loadingFinished":
                rid = params["requestId"]
                self.transfer[rid] = max(self.transfer.get(rid, 0), params["encodedDataLength"])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        await self._ws.send_json(
            {"id": ident, "method": method, "params": params, "sessionId": self._session}
        )
        async with asyncio.timeout(60):
            answer = await future
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def goto(self, url: str) -> None:
        self._loaded.clear()
        self.transfer.clear()
        self.urls.clear()
        await self.send("Page.navigate", url=url)
        async with asyncio.timeout(60):
            await self._loaded.wait()

    async def js(self, expression: str) -> Any:
        answer = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise RuntimeError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def wait_for(self, expression: str, limit: float = 30.0) -> Any:
        async with asyncio.timeout(limit):
            while True:
                value = await self.js(expression)
                if value:
                    return value
                await asyncio.sleep(0.05)

    async def screenshot(self, path: Path, width: int = 1200, height: int = 900) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Page]:
    binary = shutil.which("chromium")
    assert binary, "Debian chromium is not installed (scripts/install-test-deps.sh)"
    await asyncio.to_thread(profile.mkdir, parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        lines: list[str] = []
        for _ in range(600):  # 30 s
            lines = _active_port(profile)
            if lines:
                break
            await asyncio.sleep(0.05)
        assert lines, "chromium did not open its DevTools port"
        port, path = lines
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=0) as ws,
        ):
            await ws.send_json(
                {"id": 1, "method": "Target.createTarget", "params": {"url": "about:blank"}}
            )
            target = await _answer(ws, 1)
            await ws.send_json(
                {
                    "id": 2,
                    "method": "Target.attachToTarget",
                    "params": {"targetId": target["targetId"], "flatten": True},
                }
            )
            attached = await _answer(ws, 2)
            page = Page(ws, attached["sessionId"])
            reader = asyncio.create_task(page.reader())
            try:
                for domain in ("Page", "Network", "Runtime"):
                    await page.send(f"{domain}.enable")
                await page.send("Network.setCacheDisabled", cacheDisabled=True)
                yield page
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
    finally:
        if process.returncode is None:
            os.killpg(process.pid, signal.SIGKILL)  # our own session: chromium and its helpers
        await process.wait()


def _active_port(profile: Path) -> list[str]:
    port_file = profile / "DevToolsActivePort"
    lines = port_file.read_text().splitlines() if port_file.exists() else []
    return lines[:2] if len(lines) >= 2 else []


async def _answer(ws: aiohttp.ClientWebSocketResponse, ident: int) -> dict[str, Any]:
    async with asyncio.timeout(30):
        async for message in ws:
            data = message.json()
            if data.get("id") == ident:
                result: dict[str, Any] = data["result"]
                return result
    raise RuntimeError("DevTools closed the connection")
