"""The commands about files: `init` (a starter pmtop.toml), `export` and `import` (other engines' files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..registry import command
from .common import EXIT_OK, emit, write_new


def _init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help=argparse.SUPPRESS)


@command("init", help="write a commented starter pmtop.toml here", arguments=_init_arguments)
def init(args: argparse.Namespace) -> int:
    from ..starter import STARTER

    path = Path(args.config) if getattr(args, "config", None) else Path.cwd() / "pmtop.toml"
    write_new(path, STARTER, force=args.force, why="pmtop init never overwrites a config")
    emit(f"Wrote {path}. Edit it, then run `pmtop` (dashboard) or `pmtop --headless --detach` (daemon).")
    return EXIT_OK


def _export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", metavar="TARGET", help="systemd | nomad | kubernetes | compose | procfile")
    parser.add_argument("--out", "-o", metavar="DIR", default=".",
                        help="folder to write to (default: here; - prints the files instead)")
    parser.add_argument("--name", metavar="APP", help="the app's name (default: the config's folder)")
    parser.add_argument("--strict", action="store_true",
                        help="fail, writing nothing, if any setting cannot be expressed exactly")
    parser.add_argument("--image", metavar="IMAGE", help="container image (kubernetes, compose)")
    parser.add_argument("--systemd-version", type=int, metavar="N",
                        help="the systemd the units are for (default: this machine's)")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")


@command("export", help="write this config as systemd units, a Nomad job, Kubernetes manifests, a Compose file "
         "or a Procfile, with a fidelity report", arguments=_export_arguments)
def export(args: argparse.Namespace) -> int:
    from ..convert import export as run

    return run(args)


def _import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--output", "-o", metavar="FILE", default="pmtop.toml",
                        help="where to write (default: ./pmtop.toml; never overwritten; - prints it)")
    parser.add_argument("--format", choices=["procfile", "supervisord", "process-compose", "pm2", "compose"],
                        help="the file's kind (default: from its name and content)")


@command("import", help="turn a Procfile, supervisord .conf, process-compose YAML or PM2 ecosystem JSON into a "
         "commented pmtop.toml", arguments=_import_arguments)
def import_(args: argparse.Namespace) -> int:
    from ..convert import import_ as run

    return run(args)
