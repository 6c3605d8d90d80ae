"""`pmtop export TARGET` and `pmtop import FILE`: pmtop.toml to and from the other engines' files.

Both print a fidelity report on stdout (what could not be said exactly, and what was written instead)
and write nothing that exists already: an export refuses when any of its files exists in the output
folder (all or nothing; `--force` overwrites), an import refuses an existing output file. `--strict`
makes an export that would lose anything an error, with the report printed and nothing written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pmtop.core.errors import ActionRefused, ConfigError, UsageError

from .commands.common import write_new

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Final

    from pmtop.core.export.model import ExportResult

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1


# ------------------------------------------------------------------------------------------ export

def export(args: argparse.Namespace) -> int:
    from pmtop.core.config import find_config, load_config
    from pmtop.core.export import TARGET_MODULES, ExportOptions, target
    from pmtop.core.export.common import default_app_name
    from pmtop.core.export.report import format_report

    if args.target not in TARGET_MODULES:
        raise UsageError(f"unknown export target {args.target!r} (one of: {', '.join(TARGET_MODULES)})")
    path = find_config(getattr(args, "config", None), os.environ, Path.cwd())
    if path is None:
        raise ConfigError("no pmtop.toml here to export (name one with --config FILE or $PMTOP_CONFIG)")
    config = load_config(path)
    if not config.processes:
        raise ConfigError("declares no processes; nothing to export", file=str(path))
    name = args.name or default_app_name(config)
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?", name):
        raise UsageError(f"--name must be 1-40 lower-case letters, digits or '-' (got {name!r})")
    version, assumed = (args.systemd_version, False) if args.systemd_version else _local_systemd()
    options = ExportOptions(name=name, image=args.image, systemd_version=version)
    result = target(args.target).render(config, options)
    losses = list(result.losses)
    if args.target == "systemd" and assumed:
        from pmtop.core.export.model import Loss, LossKind

        losses.append(Loss("systemd version", LossKind.NOTE, f"no systemctl here: written for systemd {version} "
                                                             "(--systemd-version N says otherwise)"))
    report = format_report(args.target, losses)
    to_stdout = args.out == "-"
    strict = [loss for loss in losses if loss in result.strict_losses]
    if args.strict and strict:
        print(report, file=sys.stderr if to_stdout else sys.stdout, flush=True)
        raise ActionRefused(f"--strict: {len(strict)} loss(es): settings that cannot be expressed exactly in "
                            f"{args.target} (see the report); nothing written")
    if to_stdout:
        _print_files(result)
        print(report, file=sys.stderr)
        return EXIT_OK
    out = Path(args.out).expanduser()
    written = _write_files(result, out, force=args.force)
    print(f"Wrote {', '.join(str(p) for p in written)}")
    print(report)
    return EXIT_OK


def _local_systemd() -> tuple[int, bool]:
    """The version of this machine's systemd, or (254, True) when there is none to ask."""
    from pmtop.core.export.systemd import STEPS_VERSION

    try:
        found = subprocess.run(["systemctl", "--version"], capture_output=True, text=True, timeout=10)
        match = re.match(r"systemd (\d+)", found.stdout)
        if match:
            return int(match.group(1)), False
    except (OSError, subprocess.SubprocessError):
        pass
    return STEPS_VERSION, True


def _print_files(result: ExportResult) -> None:
    several = len(result.files) > 1
    for name, text in result.files.items():
        if several:
            sys.stdout.write(f"# ---- {name}\n")
        sys.stdout.write(text)


def _write_files(result: ExportResult, out: Path, *, force: bool) -> list[Path]:
    """All files or none: every existing one is named before anything is written."""
    from pmtop.core.files import write_atomic

    if out.exists() and not out.is_dir():
        raise ActionRefused(f"{out} is not a folder")
    paths = [out / name for name in result.files]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not force:
        raise ActionRefused(f"{', '.join(existing)} already exist(s); pmtop export never overwrites "
                            "(choose another --out folder, or --force)")
    try:
        for path, text in zip(paths, result.files.values(), strict=True):
            # 0600, as every pmtop file that holds commands and environments (SPEC §6).
            write_atomic(path, text.encode("utf-8"), mode=0o600)
    except OSError as exc:
        raise ActionRefused(f"cannot write to {out}: {exc.strerror or exc}") from None
    return paths


# ------------------------------------------------------------------------------------------ import

def import_(args: argparse.Namespace) -> int:
    from pmtop.core.export.report import format_report
    from pmtop.core.sources import read_source
    from pmtop.core.sources.writer import render_toml

    source = Path(args.file).expanduser()
    result = read_source(source, kind=args.format)
    text = render_toml(result)
    if args.output == "-":
        sys.stdout.write(text)
        print(format_report(f"import of {source.name} ({result.source})", result.losses), file=sys.stderr)
        return EXIT_OK
    out = Path(args.output).expanduser()
    write_new(out, text, why="pmtop import never overwrites (choose another with -o)")
    print(f"Wrote {out} ({len(result.processes)} processes from {source.name}, read as {result.source}).")
    print(format_report(f"import of {source.name}", result.losses))
    return EXIT_OK
