"""Add (`a`): a form for a new process, checked by the config's own rules before anything is sent.

The form builds a `[process.NAME]` table and hands it to `core.config.parse_process` (the rules
`pmtop.toml`, `pmtop add` and the API share), so a name, command, restart policy or health check this
form accepts is exactly one the config file would accept. Problems are shown under the field they
belong to. Saving calls `Controller.add`; the supervisor persists the process to the project's
`pmtop.toml`. Dismissed with the new process's name, or None.

Over a fleet the name says which daemon gets it: `HOST/NAME` (a bare name in a fleet of one), and a
relative folder is relative to that daemon's config folder (else `/`): the process runs over there.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, ClassVar, Final

from textual import on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from pmtop.core import checks
from pmtop.core.config import parse_process, validate_name
from pmtop.core.errors import ConfigError, PmtopError, ProcessExists
from pmtop.core.model import ProcessSpec

from ..actions import bindings
from .base import DashboardModal

RESTART_CHOICES: Final = (("on-failure: restart after a crash", "on-failure"),
                          ("always: restart after any exit", "always"), ("no: never restart", "no"))
HEALTH_CHOICES: Final = (("none: a live PID is healthy", "none"),
                         *((f"{name}: {kind.form[0].label}", name) for name, kind in checks.KINDS.items() if kind.form))
HEALTH_INPUTS: Final = ("health-target", "health-extra")
"""The inputs a health check kind may fill, in the order of its `form` fields (`checks.CheckKind.form`)."""
FIELDS: Final = ("name", "command", "cwd", "restart", "health", "port", "env_file", "ready_log_line")


class AddProcessScreen(DashboardModal[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings("add")

    def __init__(self) -> None:
        super().__init__(classes="dialog-screen")

    @property
    def base_dir(self) -> Path:
        """Where relative paths point: the config file's folder, else the current one."""
        info = self.pmtop.store.info
        return Path(info.config).parent if info is not None and info.config else Path.cwd()

    def _base_of(self, host: str) -> Path:
        """A fleet host's config folder, else its root: where a relative folder points over there."""
        link = next((link for link in self.pmtop.store.links if link.host == host), None)
        config = link.info.config if link is not None and link.info is not None else None
        return Path(config).parent if config else Path("/")

    def split_name(self, name: str) -> tuple[str | None, str]:
        """(host, name) of what was typed: the host only over a fleet; `ValueError` saying what is missing."""
        if self.pmtop.mode != "fleet":
            return None, name
        hosts = self.pmtop.store.hosts
        host, separator, local = name.rpartition("/")
        if separator:
            if host not in hosts:
                raise ValueError(f"no daemon called {host!r} in this fleet (its hosts: {', '.join(hosts)})")
            return host, local
        if len(hosts) == 1:
            return hosts[0], name
        raise ValueError(f"name the daemon too: HOST/{name or 'NAME'} (HOST one of {', '.join(hosts)})")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog form"):
            yield Label("Add a process", classes="dialog-title")
            with VerticalScroll(classes="form-fields"):
                fleet = self.pmtop.mode == "fleet"
                hosts = self.pmtop.store.hosts
                name_hint = f"{hosts[0] if hosts else 'HOST'}/web   (the daemon, then the name)" if fleet else "web"
                folder_hint = ("the daemon's config folder, else /   (relative to it; on that host)" if fleet
                               else f"{self.base_dir}   (relative to it)")
                yield from self._field("name", "Name", Input(placeholder=name_hint, id="name", compact=True))
                yield from self._field("command", "Command", Input(
                    placeholder="python3 -m http.server 8000   (split like a shell would; never run by one)",
                    id="command", compact=True))
                yield from self._field("cwd", "Folder", Input(placeholder=folder_hint, id="cwd", compact=True))
                yield from self._field("restart", "Restart", Select(RESTART_CHOICES, value="on-failure",
                                                                   allow_blank=False, id="restart",
                                                                   compact=True))
                yield from self._field("health", "Health", Select(HEALTH_CHOICES, value="none",
                                                                  allow_blank=False, id="health-type",
                                                                  compact=True),
                                       *(Input(id=field, disabled=True, compact=True, classes="health-input -hidden")
                                         for field in HEALTH_INPUTS))
                yield from self._field("port", "Port", Input(
                    placeholder="8000   (it listens there: checked free before each start, given as $PORT)",
                    id="port", compact=True))
                yield from self._field("env_file", "Env files", Input(
                    placeholder=".env, .env.local   (dotenv; later files win, relative to the folder above)",
                    id="env_file", compact=True))
                yield from self._field("ready_log_line", "Ready on", Input(
                    placeholder="listening on .*:8000   (a regex: starting until a line of output matches)",
                    id="ready_log_line", compact=True))
                yield Checkbox("Start it now", value=True, id="start", compact=True)
            yield Static(id="form-error", classes="field-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Add (ctrl+s)", variant="primary", id="save", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def _field(self, key: str, label: str, *widgets: Any) -> ComposeResult:
        with Horizontal(classes="form-row"):
            yield Label(label, classes="form-label")
            with Vertical(classes="form-input"):
                yield from widgets
                yield Static(id=f"{key}-error", classes="field-error")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    @on(Select.Changed, "#health-type")
    def _health_type(self, event: Select.Changed) -> None:
        kind = checks.KINDS.get(str(event.value))
        form = kind.form if kind is not None else ()
        for index, field in enumerate(HEALTH_INPUTS):
            target = self.query_one(f"#{field}", Input)
            used = index < len(form)
            target.disabled = not used
            target.set_class(not used, "-hidden")
            target.placeholder = f"{form[index].placeholder}   ({form[index].label})" if used else ""
        self._set_error("health", "")

    @on(Input.Changed)
    def _edited(self, event: Input.Changed) -> None:
        key = "health" if event.input.id in HEALTH_INPUTS else str(event.input.id)
        self._set_error(key, "")

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    def _set_error(self, key: str, message: str) -> None:
        for widget in self.query(f"#{key}-error"):
            assert isinstance(widget, Static)
            widget.update(message)
            widget.set_class(bool(message), "-shown")

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def form_table(self) -> tuple[str, dict[str, Any]]:
        """The form as a `[process.NAME]` table (only what the user set)."""
        value = self._value
        table: dict[str, Any] = {"command": value("command")}
        if value("cwd"):
            table["cwd"] = value("cwd")
        restart = str(self.query_one("#restart", Select).value)
        if restart != "on-failure":
            table["restart"] = restart
        kind = str(self.query_one("#health-type", Select).value)
        if kind != "none":
            health: dict[str, Any] = {"type": kind}
            for field, input_id in zip(checks.KINDS[kind].form, HEALTH_INPUTS, strict=False):
                if value(input_id):
                    health[field.key] = value(input_id)
            table["health"] = health
        if value("port"):
            table["port"] = int(value("port")) if value("port").isdigit() else value("port")
        files = [f.strip() for f in value("env_file").split(",") if f.strip()]
        if files:
            table["env_file"] = files
        if value("ready_log_line"):
            table["ready_log_line"] = value("ready_log_line")
        return value("name"), table

    def check_form(self) -> ProcessSpec | None:
        """The spec, or None after showing each problem under its field."""
        for key in (*FIELDS, "form"):
            self._set_error(key, "")
        typed, table = self.form_table()
        try:
            host, name = self.split_name(typed)
            validate_name(name)
        except ValueError as exc:
            self._set_error("name", "required" if not typed else str(exc))
            return None
        full = f"{host}/{name}" if host is not None else name
        if full in self.pmtop.store:
            self._set_error("name", f"a process named {full!r} already exists")
            return None
        try:  # an attached daemon reads the env files itself (this machine may not have them)
            spec = parse_process(name, table, base_dir=self.base_dir if host is None else self._base_of(host),
                                 env_files=self.pmtop.mode == "local")
        except ConfigError as exc:
            self._set_error(self._field_of(exc.key_path, name), exc.detail)
            return None
        if self.pmtop.mode == "local" and spec.cwd is not None and not os.path.isdir(spec.cwd):
            self._set_error("cwd", f"no such folder: {spec.cwd}")
            return None
        return dataclasses.replace(spec, name=full)

    @staticmethod
    def _field_of(key_path: str | None, name: str) -> str:
        prefix = f"process.{name}."
        if key_path and key_path.startswith(prefix):
            key = key_path[len(prefix):].split(".")[0]
            return key if key in FIELDS else "form"
        return "form"

    def action_save(self) -> None:
        spec = self.check_form()
        if spec is not None:
            self._add(spec, self.query_one("#start", Checkbox).value)

    @work(exclusive=True, group="add-process", exit_on_error=False)
    async def _add(self, spec: ProcessSpec, start: bool) -> None:
        try:
            await self.pmtop.controller.add(spec, start=start)
        except ProcessExists as exc:
            self._set_error("name", exc.message)
            return
        except ConfigError as exc:
            self._set_error(self._field_of(exc.key_path, spec.name.rpartition("/")[2]), exc.detail)
            return
        except PmtopError as exc:
            self._set_error("form", exc.message)
            return
        self.dismiss(spec.name)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

