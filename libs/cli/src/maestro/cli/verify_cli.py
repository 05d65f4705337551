"""``maestro verify BUNDLE``: check an evidence bundle offline.

Everything is checked locally (see ``maestro.runtime.provenance.verify_bundle``
and ``docs/provenance.md``); nothing is fetched. Pass the signer's published
JWKS (``GET /.well-known/jwks.json``) with ``--keys`` to pin the keys;
otherwise the bundle's own keys are used and a warning says so.

Exit codes: 0 verified; 1 verification failed (each failure printed as
``FAILED <file>: <check>: <why>``); 2 usage error (unreadable bundle or keys
file, malformed JWKS).
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from maestro.runtime.provenance import ProvenanceError, VerificationReport, verify_bundle


class VerifyOutput(enum.StrEnum):
    """How the report is printed."""

    TEXT = "text"
    JSON = "json"


def report_json(report: VerificationReport) -> dict[str, object]:
    """The report as JSON: ``ok``, ``findings``, ``warnings``, ``receipts``."""
    checkpoint = report.checkpoint
    return {
        "ok": report.ok,
        "keysPinned": report.keys_pinned,
        "receipts": report.receipts,
        "checkpoint": None
        if checkpoint is None
        else {"origin": checkpoint.origin, "treeSize": checkpoint.tree_size},
        "warnings": report.warnings,
        "findings": [
            {"path": f.path, "check": f.check, "status": f.status, "message": f.message}
            for f in report.findings
        ],
    }


def print_report(console: Console, report: VerificationReport, *, verbose: bool) -> None:
    """Failures (every check with ``verbose``), warnings, then a summary line."""
    for finding in report.findings:
        if verbose or finding.status == "FAILED":
            style = "red" if finding.status == "FAILED" else "green"
            console.print(f"[{style}]{escape(str(finding))}[/{style}]", soft_wrap=True)
    for warning in report.warnings:
        console.print(f"[yellow]warning: {escape(warning)}[/yellow]", soft_wrap=True)
    if report.ok:
        checkpoint = report.checkpoint
        where = f" in {checkpoint.origin} at tree_size {checkpoint.tree_size}" if checkpoint else ""
        console.print(
            f"[green]verified[/green]: {len(report.receipts)} receipt(s){escape(where)}, "
            f"{len(report.findings)} checks passed"
        )
    else:
        console.print(f"[red]verification failed[/red]: {len(report.failures)} check(s) failed")


def verify(
    bundle: Annotated[
        Path, typer.Argument(help="Evidence bundle (.tar.gz) to verify.", show_default=False)
    ],
    keys: Annotated[
        Path | None,
        typer.Option(
            "--keys",
            help="Trusted JWKS file (the signer's /.well-known/jwks.json): only its keys "
            "are accepted. Without it the bundle's own keys are used.",
        ),
    ] = None,
    output: Annotated[
        VerifyOutput, typer.Option("--output", "-o", help="text or json.")
    ] = VerifyOutput.TEXT,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Print every check, not only failures.")
    ] = False,
) -> None:
    """Verify an evidence bundle offline: signatures, inclusion proofs,
    checkpoint, manifest digests. Exit codes: 0 verified; 1 failed; 2 usage error."""
    console = Console(highlight=False)
    errors = Console(stderr=True, highlight=False)
    try:
        data = bundle.read_bytes()
    except OSError as exc:
        errors.print(
            f"error: cannot read bundle {escape(str(bundle))}: {escape(exc.strerror or str(exc))}"
        )
        raise typer.Exit(2) from exc
    trusted: str | None = None
    if keys is not None:
        try:
            trusted = keys.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            errors.print(f"error: cannot read keys file {escape(str(keys))}: {escape(str(exc))}")
            raise typer.Exit(2) from exc
    try:
        report = verify_bundle(data, trusted)
    except ProvenanceError as exc:
        errors.print(f"error: --keys {escape(str(keys))}: {escape(str(exc))}")
        raise typer.Exit(2) from exc
    if output == VerifyOutput.JSON:
        console.print_json(json.dumps(report_json(report)))
    else:
        print_report(console, report, verbose=verbose)
    raise typer.Exit(0 if report.ok else 1)
