"""Every dashboard action, in one table: its binding id, keys, footer label, help, the palette's words,
the process states it makes sense in, and whether it changes anything.

The table feeds everything that lists actions: each screen's `BINDINGS` (with ids, so `keymap.toml`
remaps them), the main screen's `check_action` (greyed out when it makes no sense for the marked or
selected processes, or in read-only mode), the command palette, the help screen, and the keymap's
check for unknown ids. A new action is one row here plus its `action_*` method (and, for a
per-process action, a line in `MainScreen._call`).

A leaf of the dashboard: it imports no screen and no widget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from textual.binding import Binding, BindingType

from pmtop.core.states import (
    ALL_STATES,
    RESTARTABLE_STATES,
    RETRY_NOW_STATES,
    STARTABLE_STATES,
    STOPPABLE_STATES,
    ProcessState,
)

Scope = Literal["app", "main", "logs", "details", "add", "confirm", "quit", "help"]
"""Where an action is bound: the app (every screen), or one screen."""

Needs = Literal["", "row", "targets", "marks-or-filter", "replica"]
"""What the main screen must have for the action to be offered:
`row` a selected row (greyed out without); `targets` marked processes, else the selected one, at least
one of them in the action's `states` (greyed out otherwise); `marks-or-filter` something to clear
(hidden, not greyed, when there is nothing); `replica` a selected replica, or a folded group of them."""


@dataclass(frozen=True, slots=True)
class Verb:
    """How the palette names a per-process action for a process in one of `states` ("retry web")."""

    states: frozenset[ProcessState]
    text: str
    help: str


@dataclass(frozen=True, slots=True)
class Action:
    id: str
    """The binding id, what `keymap.toml` remaps (`process-stop = "k"`): never change one."""
    name: str
    """The Textual action: `action_<name>` of the screen of `scope` (with arguments, if any)."""
    scope: Scope
    keys: str = ""
    """The default keys, comma-separated; none: only in the palette."""
    label: str = ""
    """The footer's word for it."""
    tooltip: str = ""
    """One line: the footer's tooltip, and the help screen's detail."""
    show: bool = True
    """In the footer (of the main screen, for an app action)."""
    key_display: str | None = None
    priority: bool = False
    states: frozenset[ProcessState] = ALL_STATES
    """With `needs="targets"`: the states of a process it acts on."""
    needs: Needs = ""
    changes: bool = False
    """It changes something: refused, and greyed out, in read-only mode."""
    palette: str = ""
    """The palette's entry for it ("Add a process"), if it has one that needs no process."""
    palette_help: str = ""
    verbs: tuple[Verb, ...] = ()
    """The palette's per-process entries ("stop web"): the first whose states hold the process's state."""

    def binding(self, *, namespace: str = "", show: bool | None = None) -> Binding:
        return Binding(self.keys, f"{namespace}{self.name}", self.label, show=self.show if show is None else show,
                       key_display=self.key_display, priority=self.priority, tooltip=self.tooltip, id=self.id)

    def verb_for(self, state: ProcessState) -> Verb | None:
        return next((v for v in self.verbs if state in self.states and state in v.states), None)


_A = Action
ACTIONS: Final[tuple[Action, ...]] = (
    # -- the process table (in the footer's order) -----------------------------------------------
    _A("process-start", "start", "main", "s", "Start", "Start the process; on a failed or retrying one, retry now",
       states=STARTABLE_STATES, needs="targets", changes=True,
       verbs=(Verb(RETRY_NOW_STATES, "retry", "Retry now, with a fresh failure count"),
              Verb(ALL_STATES, "start", "Start it (a failed or retrying one is retried at once)"))),
    _A("process-stop", "stop", "main", "x", "Stop", "Stop the process (its whole group)",
       states=STOPPABLE_STATES, needs="targets", changes=True,
       verbs=(Verb(ALL_STATES, "stop", "Stop it (its whole process group)"),)),
    _A("process-restart", "restart", "main", "r", "Restart", "Stop the process, then start it",
       states=RESTARTABLE_STATES, needs="targets", changes=True,
       verbs=(Verb(ALL_STATES, "restart", "Stop it, then start it"),)),
    _A("process-enable", "toggle_enabled", "main", "e", "Enable/Disable",
       "Disable (stops it; it will not start) or enable again", needs="targets", changes=True,
       verbs=(Verb(frozenset({ProcessState.DISABLED}), "enable", "Enable it (and start it, if it autostarts)"),
              Verb(ALL_STATES, "disable", "Disable it (stops it; it will not start)"))),
    _A("process-logs", "logs", "main", "enter,l", "Logs", "Follow the process's output", key_display="l",
       needs="row", verbs=(Verb(ALL_STATES, "logs of", "Follow its output"),)),
    _A("process-details", "details", "main", "i", "Details", "Config, reason and run history", needs="row",
       verbs=(Verb(ALL_STATES, "details of", "Config, reason and run history"),)),
    _A("process-add", "add", "main", "a", "Add", "Add a process (saved to pmtop.toml)", changes=True,
       palette="Add a process", palette_help="Open the form to add a process"),
    _A("process-remove", "remove", "main", "d", "Remove", "Stop and forget the process", needs="targets",
       changes=True, verbs=(Verb(ALL_STATES, "remove", "Stop and forget it (asks first)"),)),
    _A("process-mark", "mark", "main", "space", "Mark", "Mark rows; actions apply to marked rows", needs="row",
       verbs=(Verb(ALL_STATES, "mark", "Mark it; actions apply to every marked process"),)),
    _A("table-filter", "filter", "main", "slash", "Filter", "Filter by name or state",
       palette="Filter the table", palette_help="By name or state"),
    _A("process-stop-all", "stop_all", "main", changes=True, palette="Stop all processes",
       palette_help="Stop every running process (asks first)"),
    # -- the dev loop: every process's output, replicas ------------------------------------------
    _A("logs-merged", "merged_logs", "main", "L", "All logs",
       "Every process's output merged in the order it was written, with times and names",
       palette="Show every process's output", palette_help="Merged by time, each line with its process's name"),
    _A("replicas-fold", "fold", "main", "z", "Fold", "Fold replicas into one row per group (again: unfold)",
       show=False, palette="Fold or unfold replicas", palette_help="One row per group of replicas, with a count"),
    _A("replicas-more", "scale_up", "main", "plus", "Scale up", "One more replica of the selected group",
       show=False, key_display="+", needs="replica", changes=True,
       verbs=(Verb(ALL_STATES, "scale up", "One more replica of its group"),)),
    _A("replicas-fewer", "scale_down", "main", "minus", "Scale down",
       "One replica fewer of the selected group (the highest stops)", show=False, key_display="-",
       needs="replica", changes=True,
       verbs=(Verb(ALL_STATES, "scale down", "One replica fewer of its group (the highest stops)"),)),
    _A("table-clear", "clear", "main", "escape", "Clear", "Clear marks and filter", show=False,
       needs="marks-or-filter", palette="Clear marks and filter"),
    # -- everywhere (the main screen's footer shows them too) ------------------------------------
    _A("app-theme", "next_theme", "app", "t", "Theme", "Next theme (remembered)",
       palette="Next theme", palette_help="Cycle through the themes"),
    _A("app-help", "help", "app", "question_mark", "Help", "Keys and states", palette="Help: keys and states"),
    _A("app-quit", "quit", "app", "q", "Quit"),
    # -- the log pane ----------------------------------------------------------------------------
    _A("logs-back", "back", "logs", "escape", "Back"),
    _A("logs-close", "back", "logs", "q", "Back", show=False),
    _A("logs-stream", "toggle_stream", "logs", "tab", "stdout/stderr", priority=True),
    _A("logs-follow", "toggle_follow", "logs", "f", "Follow"),
    _A("logs-search", "search", "logs", "slash", "Search"),
    _A("logs-next", "jump(True)", "logs", "n", "Next match"),
    _A("logs-previous", "jump(False)", "logs", "N", "Previous match"),
    # -- details, and the dialogs ----------------------------------------------------------------
    _A("details-back", "back", "details", "escape", "Back"),
    _A("details-close", "back", "details", "q", "Back", show=False),
    _A("details-logs", "logs", "details", "l", "Logs"),
    _A("add-cancel", "cancel", "add", "escape", "Cancel"),
    _A("add-save", "save", "add", "ctrl+s", "Add", priority=True),
    _A("confirm-yes", "answer(True)", "confirm", "y", "Yes"),
    _A("confirm-no", "answer(False)", "confirm", "n,escape", "No"),
    _A("quit-stop-all", "choose('stop-all')", "quit", "s", "Stop all and quit"),
    _A("quit-hand-over", "choose('hand-over')", "quit", "h", "Keep running and quit"),
    _A("quit-cancel", "choose('')", "quit", "escape,n", "Cancel"),
    _A("help-close", "dismiss", "help", "escape,q,question_mark", "Close"),
)
BY_ID: Final = {a.id: a for a in ACTIONS}
BINDING_IDS: Final = frozenset(a.id for a in ACTIONS if a.keys)
"""What `keymap.toml` may remap (a palette-only action has no binding)."""
MAIN: Final = {a.name: a for a in ACTIONS if a.scope == "main"}
"""The process table's actions by name: what `MainScreen.check_action` looks up."""
PROCESS_ACTIONS: Final = tuple(a for a in MAIN.values() if a.verbs)
"""The actions offered per process in the palette, in the footer's order."""
HELP_SECTIONS: Final[tuple[tuple[str, Scope], ...]] = (("Processes", "main"), ("Everywhere", "app"),
                                                       ("Log pane", "logs"))

assert len(BY_ID) == len(ACTIONS), "binding ids are unique"


def of_scope(scope: Scope) -> list[Action]:
    return [a for a in ACTIONS if a.scope == scope]


def bindings(scope: Scope, *, show: bool | None = None) -> list[BindingType]:
    """The `BINDINGS` of a screen (or, with `"app"`, of the app): every action of `scope` that has keys."""
    return [a.binding(show=show) for a in of_scope(scope) if a.keys]


def main_bindings() -> list[BindingType]:
    """The main screen's footer: `?` first, so that even an 80-column footer shows where every other key
    is explained; then the process keys; then the app's other keys."""
    app = [a for a in of_scope("app") if a.keys]
    first = [a for a in app if a.name == "help"]
    rest = [a for a in app if a.name != "help"]
    return [*(a.binding(namespace="app.") for a in first), *bindings("main"),
            *(a.binding(namespace="app.") for a in rest)]


def available(action: Action, *, read_only: bool, selected: bool, target_states: Iterable[ProcessState],
              marks_or_filter: bool, replica: bool = False) -> bool | None:
    """`check_action`'s answer for a main-screen action: True offered, None greyed out, False hidden."""
    if action.needs == "marks-or-filter":
        return marks_or_filter or False
    if read_only and action.changes:
        return None
    if action.needs == "replica":
        return (selected and replica) or None
    if action.needs == "targets":
        return any(state in action.states for state in target_states) or None
    if action.needs == "row":
        return selected or None
    return True


KeyRow = tuple[str, str, str]
"""(keys as shown, what it does, more detail): one line of the help screen."""


def key_rows(actions: Iterable[Action], keymap: Mapping[str, str], display: Callable[[Binding], str]) -> list[KeyRow]:
    """One row per action name (`escape` and `q` both going back make one row), with the keys the
    user's keymap gives it, else the defaults."""
    rows: dict[str, KeyRow] = {}
    for action in actions:
        if not action.keys:
            continue
        binding = action.binding()
        keys = keymap.get(action.id, action.keys)
        shown = " / ".join(display(binding.with_key(k.strip())) for k in keys.split(","))
        rows.setdefault(action.name, (shown, action.label, action.tooltip))
    return list(rows.values())
