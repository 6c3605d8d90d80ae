"""YAML out (PyYAML, imported here only): keys in the order given, multi-line strings as `|` blocks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def dump_all(documents: Sequence[Any], header: str = "") -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # a shared dict is written out twice, never as &id001
            return True

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        style = "|" if "\n" in data else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, text)
    body = yaml.dump_all(documents, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=120,
                         explicit_start=len(documents) > 1)
    return header + body
