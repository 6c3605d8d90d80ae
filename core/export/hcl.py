"""Just enough of an HCL2 writer for a Nomad job: blocks, attributes, comments, escaped strings.

Strings are HCL templates, so `${` and `%{` are escaped (`$${`, `%%{`) to come out literally.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

Value = str | int | float | bool | Sequence["Value"] | Mapping[str, "Value"]
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


@dataclass(slots=True)
class Block:
    type: str
    labels: tuple[str, ...] = ()
    body: list[tuple[str, Value] | Block | str] = field(default_factory=list)
    """Attributes `(name, value)`, nested blocks, and comment lines (plain strings)."""

    def set(self, name: str, value: Value) -> None:
        self.body.append((name, value))

    def block(self, type_: str, *labels: str) -> Block:
        child = Block(type_, labels)
        self.body.append(child)
        return child

    def comment(self, text: str) -> None:
        self.body.append(text)

    def render(self, indent: int = 0) -> str:
        """Attributes aligned on `=` within each run of consecutive ones (as `terraform fmt` does)."""
        pad = "  " * indent
        head = " ".join([self.type, *(string(label) for label in self.labels)])
        lines = [f"{pad}{head} {{"]
        run: list[tuple[str, Value]] = []

        def flush() -> None:
            width = max((len(name) for name, _ in run), default=0)
            lines.extend(f"{pad}  {name.ljust(width)} = {literal(value, indent + 1)}" for name, value in run)
            run.clear()

        for item in self.body:
            if isinstance(item, tuple):
                if not run and len(lines) > 1 and lines[-1].endswith("}"):
                    lines.append("")
                run.append(item)
                continue
            flush()
            if isinstance(item, str):
                lines.append(f"{pad}  # {item}")
                continue
            if len(lines) > 1:
                lines.append("")
            lines.append(item.render(indent + 1))
        flush()
        lines.append(f"{pad}}}")
        return "\n".join(lines)


_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def string(text: str) -> str:
    """An HCL quoted string that reads back as exactly `text` (HCL's escapes: \\n \\r \\t \\" \\\\ \\uNNNN)."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out).replace("${", "$${").replace("%{", "%%{") + '"'


def literal(value: Value, indent: int = 0) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return string(value)
    pad = "  " * indent
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = [f"{pad}  {string(key)} = {literal(item, indent + 1)}" for key, item in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    items = [literal(item, indent + 1) for item in value]
    flat = "[" + ", ".join(items) + "]"
    if len(flat) <= 100 and "\n" not in flat:
        return flat
    return "[\n" + ",\n".join(f"{pad}  {item}" for item in items) + f",\n{pad}]"


def identifier(name: str) -> bool:
    return bool(_IDENTIFIER.fullmatch(name))
