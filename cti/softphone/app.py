"""The terminal views of the softphone (textual). Logic lives in SoftphoneClient.

Keys: a answer, h hang up, o hold/unhold, t transfer, c/x consult complete /
cancel, s state, w wrap-up, r reconnect the events, q quit.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    Footer,
    Input,
    Label,
    Log,
    OptionList,
    RadioButton,
    RadioSet,
    Static,
)
from textual.widgets.option_list import Option

from cti.softphone.client import SoftphoneClient, SoftphoneError
from cti.softphone.model import call_text, pop_text, status_text

TRANSFER_KINDS = ("blind", "consult")
TARGET_TYPES = ("queue", "advisor", "external")


class StateScreen(ModalScreen[tuple[str, str | None] | None]):
    """Choose available / away (with a reason) / logged out."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Advisor state")
            with Horizontal():
                yield Button("Available", id="available", variant="success")
                yield Button("Away", id="away", variant="warning")
                yield Button("Logged out", id="logged_out", variant="error")
            yield Input(placeholder="away reason (e.g. break, training)", id="reason")

    def on_mount(self) -> None:
        self.query_one("#available", Button).focus()  # an Input would swallow the keys

    def on_button_pressed(self, event: Button.Pressed) -> None:
        reason = self.query_one("#reason", Input).value.strip() or None
        state = event.button.id or "available"
        self.dismiss((state, reason if state == "away" else None))


class TransferScreen(ModalScreen[tuple[str, str, str] | None]):
    """Blind or consult transfer to a queue, an advisor or a directory entry."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, directory: list[dict[str, Any]]) -> None:
        super().__init__()
        self.directory = directory

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Transfer: kind, target type, target (Enter sends)")
            with Horizontal():
                with RadioSet(id="kind"):
                    for i, k in enumerate(TRANSFER_KINDS):
                        yield RadioButton(k, value=i == 0, name=k, id=f"kind-{k}")
                with RadioSet(id="target_type"):
                    for i, t in enumerate(TARGET_TYPES):
                        yield RadioButton(t, value=i == 0, name=t, id=f"type-{t}")
            yield OptionList(*[Option(_dir_label(e), id=str(e.get("key")))
                               for e in self.directory], id="directory")
            yield Input(placeholder="topic code, advisor name or directory key", id="target")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """A directory entry is an external target."""
        self.query_one("#target", Input).value = event.option.id or ""
        for button in self.query_one("#target_type", RadioSet).query(RadioButton):
            button.value = button.name == "external"
        self.query_one("#target", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        target = event.value.strip()
        if target:
            self.dismiss((_radio(self, "#kind"), _radio(self, "#target_type"), target))


class WrapUpScreen(ModalScreen[tuple[str, str] | None]):
    """A wrap-up code (from the config) and a note; Enter in the note saves."""

    BINDINGS = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, codes: list[dict[str, Any]]) -> None:
        super().__init__()
        self.codes = codes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Wrap-up: choose a code, write a note, Enter saves")
            if self.codes:
                yield OptionList(*[Option(f"{c.get('label') or c['code']}  ({c['code']})",
                                          id=c["code"])
                                   for c in self.codes], id="codes")
            else:
                yield Input(placeholder="wrap-up code", id="code")
            yield Input(placeholder="note", id="note")
            yield Button("Save", id="save", variant="primary")

    def on_mount(self) -> None:
        if self.codes:
            codes = self.query_one("#codes", OptionList)
            codes.highlighted = 0
            codes.focus()

    def _code(self) -> str:
        if self.codes:
            codes = self.query_one("#codes", OptionList)
            idx = codes.highlighted
            return "" if idx is None else str(codes.get_option_at_index(idx).id)
        return self.query_one("#code", Input).value.strip()

    def _save(self) -> None:
        code = self._code()
        if code:
            self.dismiss((code, self.query_one("#note", Input).value.strip()))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.query_one("#note", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "note":
            self._save()
        else:
            self.query_one("#note", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self._save()


def _radio(screen: ModalScreen[Any], selector: str) -> str:
    pressed = screen.query_one(selector, RadioSet).pressed_button
    return str(pressed.name) if pressed is not None else ""


def _dir_label(e: dict[str, Any]) -> str:
    extra = " ".join(str(e[k]) for k in ("number", "country") if e.get(k))
    return f"{e.get('key')}  {e.get('name', '')}  {extra}".rstrip()


class SoftphoneApp(App[None]):
    TITLE = "cti softphone"
    CSS = """
    #status { height: 1; background: $primary-background; }
    #pop { border: round $accent; height: auto; min-height: 8; padding: 0 1; }
    #call { height: 1; margin: 0 1; }
    #log { height: 1fr; border: round $panel; }
    .dialog { width: 80; height: auto; padding: 1 2; border: thick $accent;
              background: $surface; }
    StateScreen, TransferScreen, WrapUpScreen { align: center middle; }
    """
    BINDINGS = [
        Binding("a", "answer", "answer"),
        Binding("h", "hangup", "hang up"),
        Binding("o", "hold", "hold"),
        Binding("t", "transfer", "transfer"),
        Binding("c", "consult_complete", "consult done"),
        Binding("x", "consult_cancel", "consult cancel"),
        Binding("s", "state", "state"),
        Binding("w", "wrap_up", "wrap-up"),
        Binding("r", "recording", "pause/resume recording"),
        Binding("e", "reconnect", "reconnect events"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, client: SoftphoneClient) -> None:
        super().__init__()
        self.client = client
        self._logged = 0  # messages already written to the log view

    def compose(self) -> ComposeResult:
        # Kept as attributes: app.query_one searches the top screen, a dialog when open.
        self.status_view = Static(id="status", markup=False)
        self.pop_view = Static(id="pop", markup=False)
        self.call_view = Static(id="call", markup=False)
        self.log_view = Log(id="log")
        yield self.status_view
        yield self.pop_view
        yield self.call_view
        yield self.log_view
        yield Footer()

    def on_mount(self) -> None:
        self.pop_view.border_title = "Screen pop"
        self.client.subscribe(self.refresh_views)
        self.refresh_views()
        self.set_interval(1, self.refresh_views)  # the talk and hold timers count on
        self.run_worker(self._start(), name="start")

    async def _start(self) -> None:
        try:
            await self.client.start()
        except SoftphoneError as e:
            self.notify(f"cannot start: {e}", severity="error", timeout=30)

    async def on_unmount(self) -> None:
        self.client.unsubscribe(self.refresh_views)  # no view updates once the UI is gone
        await self.client.aclose()

    def refresh_views(self) -> None:
        s = self.client.state
        self.status_view.update(status_text(s))
        self.pop_view.update(pop_text(s.call, s.labels))
        self.call_view.update(call_text(s.call, s.labels))
        for line in s.messages[self._logged:]:
            self.log_view.write_line(line)
        self._logged = len(s.messages)

    # ------------------------------------------------------------ actions
    def _run(self, action: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await action
            except SoftphoneError as e:
                self.client.state.note(f"failed: {e}")
                self.refresh_views()
                self.notify(str(e), severity="error")

        self.run_worker(run(), group="actions")

    def action_answer(self) -> None:
        self._run(self.client.answer())

    def action_hangup(self) -> None:
        self._run(self.client.hangup())

    def action_hold(self) -> None:
        self._run(self.client.hold())

    def action_recording(self) -> None:
        self._run(self.client.toggle_recording())

    def action_reconnect(self) -> None:
        self._run(self.client.reconnect_events())

    def action_consult_complete(self) -> None:
        self._run(self.client.consult_complete())

    def action_consult_cancel(self) -> None:
        self._run(self.client.consult_cancel())

    def action_state(self) -> None:
        def chosen(result: tuple[str, str | None] | None) -> None:
            if result is not None:
                self._run(self.client.set_state(*result))

        self.push_screen(StateScreen(), chosen)

    def action_transfer(self) -> None:
        async def open_dialog() -> None:
            try:
                directory = await self.client.directory()
            except SoftphoneError as e:
                directory = []
                self.client.state.note(f"no directory: {e}")

            def chosen(result: tuple[str, str, str] | None) -> None:
                if result is not None:
                    self._run(self.client.transfer(*result))

            self.push_screen(TransferScreen(directory), chosen)

        self.run_worker(open_dialog(), group="dialogs")

    def action_wrap_up(self) -> None:
        async def open_dialog() -> None:
            try:
                codes = await self.client.wrap_up_codes()
            except SoftphoneError as e:
                codes = []
                self.client.state.note(f"no wrap-up codes: {e}")

            def chosen(result: tuple[str, str] | None) -> None:
                if result is not None:
                    self._run(self.client.wrap_up(*result))

            self.push_screen(WrapUpScreen(codes), chosen)

        self.run_worker(open_dialog(), group="dialogs")

    async def action_quit(self) -> None:
        await self.client.aclose()
        self.exit()
