"""The partner's state where people look: `pmtop status`'s line and the dashboard's header."""

from __future__ import annotations

import time

from pmtop.cli.commands.daemon import describe_partner
from pmtop.core.model import SupervisorInfo
from pmtop.tui.widgets.header import StatusHeader

INFO = {"instance": "default", "pid": 42, "started_at": time.time(), "version": "0", "host": "127.0.0.1",
        "port": 19881}


def test_status_line_and_header() -> None:
    partner = {"state": "restarting", "instance": "watcher", "host": "127.0.0.1", "port": 19882, "pid": 7,
               "restarts": 2, "reason": "pid 7 died without cleaning up; restarting it (restart 2)"}
    assert describe_partner(partner) == ("restarting: watcher at 127.0.0.1:19882 (pid 7), 2 restarts; "
                                         "pid 7 died without cleaning up; restarting it (restart 2)")
    info = SupervisorInfo.from_dict({**INFO, "partner": partner})
    assert info.partner == "restarting"
    header = StatusHeader("attached")
    header.info = info
    assert "partner: restarting" in header._left().plain
    for state, shown in (("none", False), ("up", True), ("lost", True), ("paused", True)):
        header.info = SupervisorInfo.from_dict({**INFO, "partner": {"state": state}})
        assert ("partner:" in header._left().plain) == shown, state
    header.info = SupervisorInfo.from_dict(INFO)  # an older daemon: no partner field at all
    assert "partner" not in header._left().plain
