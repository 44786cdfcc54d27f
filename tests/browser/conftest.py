"""Browser tests: Debian's Chromium (driven by pytest-playwright, sync API) against a
real gateway with real SIP phones.

The gateway and the phones are asyncio code; Playwright's sync API owns the
main thread. So the gateway runs on its own event loop in a background thread
and the test talks to it through ``Floor.run`` (run_coroutine_threadsafe).
These tests run in their own pytest process (see the Makefile): pytest-playwright
and pytest-asyncio clash in one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Page, expect

from cti.controller.gateway import Gateway

# Every event the gateway publishes in these tests is checked against
# docs/asyncapi.yaml too (the e2e tests' autouse fixture, shared).
from tests.e2e.conftest import (
    events_match_the_asyncapi_document,  # noqa: F401
    write_short_prompts,
)
from tests.e2e.gateway_harness import REPO, call_hotline, demo_config_data, running_gateway
from tests.peers.phone import Phone

CHROMIUM = os.environ.get("CTI_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
T = TypeVar("T")

# Page content waits: the gateway, the IVR and two cores shared with other tests.
expect.set_options(timeout=30_000)


def pytest_configure(config: pytest.Config) -> None:
    # pytest-playwright's own base_url fixture trips a pytest deprecation; not ours.
    config.addinivalue_line(
        "filterwarnings", "ignore:Session-scoped fixtures defined as instance methods")
    config.addinivalue_line(
        "markers", "gateway(crisis_team=False, short_prompts=False, **overrides): the floor "
        "fixture's gateway settings (as for running_gateway; relative paths are under the "
        "test's tmp_path); crisis_team: a phone in the directory as crisis_team "
        "(Floor.team); short_prompts: every prompt a 0.3 s tone (tests/e2e/conftest.py)")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's Chromium, not a Playwright download (``playwright install`` is never run)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


@pytest.fixture(autouse=True)
def no_script_errors(page: Page) -> Iterator[None]:
    """An uncaught JavaScript error on a page fails the test."""
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield
    assert not errors, errors


class LoopThread:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="cti-test-loop", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """A plain function on the loop's thread (SQLite connections belong to it)."""
        async def wrapper() -> T:
            return fn(*args)

        return self.run(wrapper())

    def close(self) -> None:
        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        with contextlib.suppress(Exception):
            self.run(cancel_rest(), timeout=15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(15)
        if not self._thread.is_alive():
            self.loop.close()


class Floor:
    """A running gateway plus the phones of a test, all on the background loop."""

    def __init__(self, loop: LoopThread, gw: Gateway, stack: contextlib.AsyncExitStack,
                 team: Phone | None) -> None:
        self.loop = loop
        self.gw = gw
        self.team = team  # the crisis team's phone, if the test asked for one
        self._stack = stack
        s = gw.settings
        web = "https" if s.http.tls is not None else "http"
        self.base_url = f"{web}://{s.http.host}:{s.http.port}"

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return self.loop.run(coro, timeout)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        return self.loop.call(fn, *args)

    def phone(self, name: str) -> Phone:
        """A started phone, stopped at the end of the test (before the gateway)."""
        async def start() -> Phone:
            return await self._stack.enter_async_context(Phone(name=name))

        return self.run(start())

    def advisor_phone(self, name: str) -> Phone:
        """An advisor's softphone registered to the edge with digest auth."""
        phone = self.phone(name)
        s = self.gw.settings

        async def register() -> dict[str, Any]:
            await phone.command("register", user=name, password=f"demo-{name}",
                                registrar=f"sip:{s.sip.ip}:{s.sip.port}", transport="udp")
            return await phone.wait_for("reg.state", timeout=10)

        reg = self.run(register())
        assert reg["code"] == 200, reg
        return phone

    def dial(self, caller: Phone, digits: str) -> str:
        """The caller dials the hotline and presses the IVR digits; returns the leg."""
        return self.run(call_hotline(caller, self.gw, digits))


@pytest.fixture
def floor(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Floor]:
    marker = request.node.get_closest_marker("gateway")
    overrides = dict(marker.kwargs) if marker else {}
    with floor_of(tmp_path, **overrides) as f:
        yield f


@contextlib.contextmanager
def floor_of(tmp_path: Path, crisis_team: bool = False, short_prompts: bool = False,
             **overrides: Any) -> Iterator[Floor]:
    """A Floor on its own loop thread: running_gateway(tmp_path, **overrides)
    (``extra_plugins=`` too), stopped at the end; short_prompts: every prompt a
    0.3 s tone (tests/e2e/conftest.py)."""
    if short_prompts:
        overrides["prompts__override_dir"] = str(write_short_prompts(tmp_path / "prompts"))
    loop = LoopThread()
    stack = contextlib.AsyncExitStack()

    async def start() -> tuple[Gateway, Phone | None]:
        team = None
        if crisis_team:  # started first: its address goes into the directory
            team = await stack.enter_async_context(Phone(name="crisis"))
            directory = [d for d in demo_config_data()["directory"] if d["key"] != "crisis_team"]
            overrides["directory"] = [{"key": "crisis_team", "name": "Crisis team",
                                       "number": "+31703480000", "uri": team.uri("crisis")},
                                      *directory]
        gw = await stack.enter_async_context(running_gateway(tmp_path, **overrides))
        return gw, team

    try:
        gw, team = loop.run(start(), timeout=90)
        yield Floor(loop, gw, stack, team)
    finally:
        try:
            loop.run(stack.aclose(), timeout=90)
        finally:
            loop.close()


def login(page: Page, floor: Floor, path: str, user: str) -> None:
    """Open a page and sign in with the demo password; wait for the live WebSocket."""
    page.goto(floor.base_url + path)
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(f"demo-{user}")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("conn-status")).to_have_text("Live")


def screenshot(page: Page, name: str) -> Path:
    """A full-page screenshot kept as a test artifact (test-artifacts/, gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
