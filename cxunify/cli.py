"""The ``cxunify`` command line. Each command resolves options, calls one library function and
prints with rich. Known errors become ``Error: ...`` on stderr with a documented exit code:
0 ok, 1 user error (config, input), 2 internal error, 3 quality gate failed, 4 another run
holds the output folder (nothing done; try again later).
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperCommand

from cxunify import jsontext, scratch
from cxunify.errors import CxunifyError, OutputError, UserError, interrupted, unreadable_file
from cxunify.fields import Kind
from cxunify.printable import printable

app = typer.Typer(
    name="cxunify",
    help="Unify customer exports into one profile per customer, as Parquet DuckDB can query.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


class _Stdout(Console):
    """stdout, whose reader may stop reading (`cxunify sql ... | head -1`): rich's own answer
    is SystemExit(1), which made a table a reader stopped taking a failed command under
    `set -o pipefail`; as a BrokenPipeError, `_guard` ends the command quietly with 0, as it
    does for csv and json."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


stdout = _Stdout()
stderr = Console(stderr=True)

T = TypeVar("T")

EXIT_OK, EXIT_USER, EXIT_INTERNAL, EXIT_GATE = 0, 1, 2, 3

# Options shared by several commands, defined once.
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML config (see configs/).")
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
# Each file is a source named by its file's stem; NAME=PATH names the source (its files are
# all PATH matches), so tonight's orders_2025-07-01.csv can update the stored `orders`.
_NAMING = "; repeatable; NAME=PATH names the source (default: the file's stem)."
CrmOpt = Annotated[
    list[str] | None, typer.Option("--crm", help="CRM export (path or glob)" + _NAMING)
]
TxOpt = Annotated[
    list[str] | None,
    typer.Option("--transactions", help="Orders/payments export (path or glob)" + _NAMING),
]
SocialOpt = Annotated[
    list[str] | None, typer.Option("--social", help="Social accounts export" + _NAMING)
]
SupportOpt = Annotated[
    list[str] | None, typer.Option("--support", help="Support tickets export" + _NAMING)
]
RegionOpt = Annotated[
    str | None,
    typer.Option("--phone-region", help="Region for phones without +country code (e.g. GB)."),
]
DayfirstOpt = Annotated[
    bool, typer.Option("--dayfirst", help="Read ambiguous dates as day/month/year.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a JSON summary on stdout.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")]
AsOfOpt = Annotated[
    str | None,
    typer.Option("--as-of", help="Date traits are relative to (default: newest in data)."),
]
PreviousOpt = Annotated[
    str | None,
    typer.Option("--previous", help="Output whose customer ids to carry over (default: --out)."),
]
# A folder unify writes: with the spark engine also a store's URI (kept as text: a Path would
# fold "s3a://" into "s3a:/").
FolderOpt = Annotated[
    str,
    typer.Option(
        "--out",
        "-o",
        help="Output folder; with --engine spark also s3a://, hdfs://, abfss:// (see README).",
    ),
]


def _guard(debug: bool, action: Callable[[], T]) -> T:
    """The one error boundary: known errors → one line and an exit code."""
    try:
        return action()
    except CxunifyError as exc:
        if debug:
            stderr.print_exception()
        for line in getattr(exc, "problems", None) or [str(exc)]:
            # (one line, whatever a name from a file in it holds: a line break, an escape)
            stderr.print(f"Error: {printable(line)}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        _stopped()
    except typer.Exit:
        raise
    except BrokenPipeError:
        # The reader of stdout stopped reading (`cxunify sql ... | head`), as it may: the
        # rows it took are whole, and no one is at fault. Python's own flush of stdout at
        # exit would meet the closed pipe again, so stdout goes to nowhere first.
        _discard_stdout()
        raise typer.Exit(EXIT_OK) from None
    except OSError as exc:
        # A path the user gave that cannot be written or read (not a folder, no permission,
        # a folder where a file should be): their setup, not a cxunify fault.
        if debug:
            stderr.print_exception()
        where = f"{exc.filename}: " if exc.filename else ""
        why = exc.strerror or str(exc)
        if exc.errno == errno.EEXIST and exc.filename and Path(exc.filename).is_file():
            why = "is a file, not a folder: nothing can be written inside it"  # (mkdir's EEXIST)
        stderr.print(f"Error: {where}{why}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(UserError.exit_code) from None
    except Exception as exc:
        if debug:
            stderr.print_exception()
        if interrupted(exc):
            _stopped()
        damaged = unreadable_file(exc)
        if damaged is not None:
            stderr.print(f"Error: {damaged}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(UserError.exit_code) from None
        if not debug:
            first_line = str(exc).strip().split("\n", 1)[0]
            stderr.print(
                f"Internal error: {type(exc).__name__}: {first_line} (run again with --debug "
                "for the whole message and traceback, and please report it)",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        raise typer.Exit(EXIT_INTERNAL) from None


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's capture)
        pass


def _print_version(asked: bool) -> None:
    if not asked:
        return
    from cxunify.pipeline import versions

    found = versions()
    rest = ", ".join(f"{name} {version}" for name, version in found.items() if name != "cxunify")
    stdout.print(
        f"cxunify {found['cxunify']} ({rest})", markup=False, highlight=False, soft_wrap=True
    )
    raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the versions of cxunify and what it runs with (as run.json), and exit.",
        ),
    ] = False,
) -> None:
    """Unify customer exports into one profile per customer, as Parquet DuckDB can query."""


# A nightly job its scheduler stops gets SIGTERM (`timeout`, systemd, Kubernetes). Read as
# Ctrl-C, it stops the run the same way: its staging folder and its lock go on the way out (the
# previous output was never touched), instead of staying for the next run to clear.
_TERMINATED: list[int] = []


def _on_sigterm(signum: int, frame: object) -> None:
    if not _TERMINATED:  # a second one lets the first one's clean-up finish
        _TERMINATED.append(signum)
        raise KeyboardInterrupt


# Whether the command main runs said it was stopped (its exit code 130 may be click's, unsaid).
_STOPPED_SAID: list[bool] = []


def _stopped() -> NoReturn:
    """Exit as a run stopped by Ctrl-C (130) or SIGTERM (143, as its shell would report)."""
    raise typer.Exit(_say_stopped())


def _say_stopped() -> int:
    """Say that the command was stopped, and return its exit code: 130 for Ctrl-C, 143 for
    SIGTERM."""
    _STOPPED_SAID.append(True)
    stderr.print("Terminated." if _TERMINATED else "Interrupted.")
    return 128 + signal.SIGTERM if _TERMINATED else 130


def main(args: list[str] | None = None) -> None:
    """The ``cxunify`` command. A usage error (an unknown flag, a value of the wrong type) is
    a user error like any other: one line on stderr and exit code 1. Click's own convention
    is 2, which this tool keeps for internal errors, so a cron job can tell them apart."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    _STOPPED_SAID.clear()
    try:
        if not (sys.argv[1:] if args is None else args):
            # `cxunify` alone: no command given, a user error whose message is the help, on
            # stderr. Typer prints it on stdout (its NoArgsIsHelpError carried none), where a
            # script reading stdout as JSON took it for the command's output.
            with redirect_stdout(sys.stderr):
                app(args=["--help"], prog_name="cxunify", standalone_mode=False)
            sys.exit(UserError.exit_code)
        code = app(args=args, prog_name="cxunify", standalone_mode=False)
    except typer.TyperException as exc:
        context = getattr(exc, "ctx", None)
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        where = f" (see `{context.command_path} --help`)" if context is not None else ""
        if (
            type(exc).__name__ == "NoSuchOption"
            and context is not None
            and context.info_name == "sql"
        ):
            where += "; a query that starts with - goes after --: cxunify sql --out DIR -- QUERY"
        stderr.print(f"Error: {message}{where}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(UserError.exit_code)
    except typer.Abort:
        stderr.print("Aborted.")
        sys.exit(130)
    except KeyboardInterrupt:
        # Ctrl-C (or SIGTERM) before click runs the command, while typer builds it from the
        # functions' signatures (most of a second): a 40-line traceback and death by the
        # signal, where a moment later it is one line and 130.
        sys.exit(_say_stopped())
    if code == 130 and not _STOPPED_SAID:
        # Click's own answer to Ctrl-C in a command before its _guard (while it imports what
        # it runs): 130 without a word, and 130 for SIGTERM too.
        code = _say_stopped()
    sys.exit(code if isinstance(code, int) else 0)


class RichProgress:
    """Shows each pipeline stage as a rich progress bar on stderr."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def start(self, stage: str, description: str) -> None:
        if stage in self.tasks:  # a stage run in two stretches keeps its one bar
            self.progress.reset(self.tasks[stage], total=1.0)
            return
        self.tasks[stage] = self.progress.add_task(description, total=1.0)

    def advance(self, stage: str, fraction: float) -> None:
        self.progress.update(self.tasks[stage], completed=fraction)

    def finish(self, stage: str) -> None:
        self.progress.update(self.tasks[stage], completed=1.0)


@contextmanager
def _progress(quiet: bool) -> Iterator[RichProgress | None]:
    if quiet or not stderr.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description:<24}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=stderr,
        transient=False,
    ) as bar:
        yield RichProgress(bar)


def _flags(
    crm: list[str] | None,
    transactions: list[str] | None,
    social: list[str] | None,
    support: list[str] | None,
) -> dict[Kind, list[str]]:
    given = {
        Kind.crm: crm or [],
        Kind.transactions: transactions or [],
        Kind.social: social or [],
        Kind.support: support or [],
    }
    return {kind: paths for kind, paths in given.items() if paths}


def _note_duckdb_only(settings: Any, command: str) -> None:
    if settings.engine.name == "spark":
        _say(f"Note: cxunify {command} runs on DuckDB; engine: spark applies to unify")


def _folder(location: str) -> Path | str:
    """A local folder as a Path; a store's URI (s3a://...) as it was given."""
    from cxunify.engine.hadoop import is_uri

    return location if is_uri(location) else Path(location)


@contextmanager
def _gate_summary(as_json: bool) -> Iterator[None]:
    """With ``--json``, a run stopped by a quality gate still prints its summary (status
    ``quality_gate_failed``, the figures and the gates that failed) before it exits with 3:
    the keys of a passing run's summary, each as the stopped run measured it (its run.json's),
    so a script reads both alike."""
    from cxunify.gates import GateFailed

    try:
        yield
    except GateFailed as exc:
        # (the run's warnings too: the aside output holds what they are about)
        _warn(exc.manifest.get("warnings", []))
        if as_json:
            manifest = exc.manifest
            summary: dict[str, Any] = {
                "status": "quality_gate_failed",
                "out": exc.aside,
                "failed": exc.failed,
            }
            # null where the stopped run has none: it removed no earlier out.rejected/
            summary.update({key: manifest.get(key) for key in _SUMMARY_KEYS})
            if "update" in manifest:  # as update --json adds it
                summary["update"] = manifest["update"]
            print(jsontext.dumps(summary))
        raise


# The keys of `--json`'s summary after the status and folder (pipeline.RunResult.summary).
_SUMMARY_KEYS = (
    "counts",
    "stages_seconds",
    "config_hash",
    "ids",
    "quality",
    "warnings",
    "rejected_removed",
)


def _set_flag(settings: Any, key: str, value: object, flag: str) -> None:
    """Set a config value from a command-line flag, validated as the config's own would be."""
    from pydantic import ValidationError

    try:
        setattr(settings, key, value)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise UserError(f"{flag}: {message}") from None


def _load(
    config_path: Path | None,
    flags: dict[Kind, list[str]],
    phone_region: str | None,
    dayfirst: bool,
    stored: dict[str, list] | None = None,
) -> Any:
    """The config from --config, or inferred from the flags (`stored`: an update's stored
    sources, whose id columns inference keeps)."""
    from cxunify.config import load_config
    from cxunify.infer import config_from_flags

    if config_path is not None:
        if flags:
            raise UserError("give either --config or --crm/--transactions/--social/--support")
        config = load_config(config_path)
        if phone_region:
            _set_flag(config.standardize, "phone_region", phone_region.upper(), "--phone-region")
        if dayfirst:
            config.standardize.dayfirst = True
        return config
    with scratch.folder("infer") as work:
        config, _ = config_from_flags(flags, work, phone_region, dayfirst, stored, for_draft=False)
    return config


@app.command()
def unify(
    out: FolderOpt = "out",
    config: ConfigOpt = None,
    crm: CrmOpt = None,
    transactions: TxOpt = None,
    social: SocialOpt = None,
    support: SupportOpt = None,
    phone_region: RegionOpt = None,
    dayfirst: DayfirstOpt = False,
    model: Annotated[
        Path | None, typer.Option("--model", help="Reuse a model from `cxunify train`.")
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="duckdb (default) or spark; overrides the config's engine."),
    ] = None,
    as_of: AsOfOpt = None,
    previous: PreviousOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Unify exports into profiles, identity map, links and rejects in OUT."""
    from cxunify.pipeline import unify as run
    from cxunify.score import load_model

    def action() -> None:
        settings = _load(config, _flags(crm, transactions, social, support), phone_region, dayfirst)
        if engine is not None:
            settings = settings.with_engine(engine)
        if as_of is not None:
            _set_flag(settings.profile, "as_of", as_of, "--as-of")
        fitted = load_model(model) if model is not None else None
        with _progress(quiet or as_json) as progress, _gate_summary(as_json):
            result = run(settings, _folder(out), progress, fitted, previous and _folder(previous))
        _warn(result.warnings)
        _note_rejected_removed(result.manifest)
        if as_json:
            print(jsontext.dumps(result.summary()))
            return
        if not quiet:
            counts = result.counts
            _done(
                f"{_count(counts['rows_in'], 'row')} → {_count(counts['profiles'], 'customer')} "
                f"({counts['rows_rejected']:,} rejected) in {result.out_dir}"
            )

    _guard(debug, action)


@app.command()
def update(
    previous: Annotated[
        str, typer.Option("--previous", help="The output to update (from `cxunify unify`).")
    ],
    out: Annotated[
        str | None, typer.Option("--out", "-o", help="Output folder (default: --previous).")
    ] = None,
    config: ConfigOpt = None,
    crm: CrmOpt = None,
    transactions: TxOpt = None,
    social: SocialOpt = None,
    support: SupportOpt = None,
    phone_region: RegionOpt = None,
    dayfirst: DayfirstOpt = False,
    delete: Annotated[
        Path | None,
        typer.Option(
            "--delete",
            help="CSV of records to remove (columns source, source_record_id).",
        ),
    ] = None,
    as_of: AsOfOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Add new and changed rows to an output, linking only them (same result as a full run)."""
    from cxunify.update import stored_sources
    from cxunify.update import update as run

    def action() -> None:
        flags = _flags(crm, transactions, social, support)
        if delete is not None and config is None and not flags:
            raise UserError(_deletions_alone(_folder(previous)))
        stored = stored_sources(_folder(previous)) if flags else None
        settings = _load(config, flags, phone_region, dayfirst, stored)
        _note_duckdb_only(settings, "update")
        if as_of is not None:
            _set_flag(settings.profile, "as_of", as_of, "--as-of")
        with _progress(quiet or as_json) as progress, _gate_summary(as_json):
            result = run(settings, _folder(previous), out and _folder(out), progress, delete)
        _warn(result.warnings)
        _note_rejected_removed(result.manifest)
        if as_json:
            print(jsontext.dumps({**result.summary(), "update": result.manifest["update"]}))
            return
        if not quiet:
            counts, changed = result.counts, result.manifest["update"]
            deleted = (
                f", {changed['records_deleted']:,} deleted" if changed["records_deleted"] else ""
            )
            # Ids of known sources the deletions file names but the output does not hold:
            # deleted on an earlier night, or a mistyped id. Shown, not hidden in run.json.
            missing = changed["deletions_not_found"]
            if missing:
                deleted += f", {missing:,} to delete not found"
            _done(
                f"{_count(changed['records_added_or_changed'], 'new or changed row')}"
                f"{deleted} → {_count(counts['profiles'], 'customer')} in {result.out_dir}"
            )

    _guard(debug, action)


def _deletions_alone(previous: Path | str) -> str:
    """What to give `update --delete` on a night with nothing else: its sources' exports,
    which it reads for their settings and mapping as every night (a header alone is 0 rows)."""
    from cxunify.update import stored_sources

    stored = stored_sources(previous)
    flags = " ".join(f"--{kinds[0]} {name}=HEADER.csv" for name, kinds in sorted(stored.items()))
    return (
        "no input: an update reads tonight's exports beside --delete; with deletions alone, "
        "give each source an export holding just its header row"
        + (f" ({flags})" if flags else "")
        + ", or a --config naming such files"
    )


def _done(message: str) -> None:
    """The line saying what a command wrote: '✓ ' and `message` as it is, not read as markup,
    so a file named '[draft] report.html' keeps its name and '[/x].csv' is no internal error."""
    stderr.print(Text.assemble(("✓", "green"), " ", message), soft_wrap=True)


def _warn(warnings: list[str]) -> None:
    """A run's warnings (run.json's `warnings`), on stderr whatever --quiet or --json say: a
    nightly job's log is where they are read."""
    for warning in warnings:
        _say(f"Warning: {warning}")


def _say(message: str) -> None:
    """A message (a note, a warning, a count) on stderr as one line, as it is: rich wraps at
    the terminal's width, or at 80 columns (or $COLUMNS) when stderr is a file, which split a
    note in two in a log read a line at a time; nor is it read as markup."""
    stderr.print(message, markup=False, highlight=False, soft_wrap=True)


def _note_rejected_removed(manifest: dict[str, Any]) -> None:
    """Say so when this run removed the output an earlier run stopped by a gate set aside
    (told even with --quiet: a folder the operator may have been inspecting went)."""
    removed = manifest.get("rejected_removed")
    if removed:
        stderr.print(
            f"Removed {removed['folder']}: the output of the run started "
            f"{removed['started_at'] or 'at an unknown time'} that a quality gate stopped, "
            "superseded by this run",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def init(
    crm: CrmOpt = None,
    transactions: TxOpt = None,
    social: SocialOpt = None,
    support: SupportOpt = None,
    phone_region: RegionOpt = None,
    dayfirst: DayfirstOpt = False,
    to: Annotated[
        Path | None,
        typer.Option("--to", help="Write the config here (paths relative to it) not stdout."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the --to file if it exists.")
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """Print the config cxunify infers for these exports, to review and edit."""
    from cxunify.infer import config_from_flags, render_yaml
    from cxunify.ingest import local_files
    from cxunify.output import refuse_output_file

    def action() -> None:
        flags = _flags(crm, transactions, social, support)
        if not flags:  # init takes no --config: the shared message would offer one
            raise UserError(
                "no input: give at least one of --crm/--transactions/--social/--support"
            )
        with scratch.folder("infer") as work:
            settings, inferred = config_from_flags(
                flags, work, phone_region, dayfirst, require_columns=False
            )
        for item in inferred:
            if not item.source.columns:
                stderr.print(
                    f"Warning: {item.source.path}: no column is recognised as a customer "
                    f"field; map at least one in the columns of source '{item.source.name}' "
                    "before running",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
        if to is None:
            sys.stdout.write(render_yaml(settings, inferred, None))
            return
        # Not over an export it read (--crm crm.csv --to crm.csv), nor an output's file; and
        # a config already there is one the user may have edited by hand since it was drafted.
        refuse_output_file(to, "--to", inputs=local_files(settings), example="cx.yaml")
        if to.exists() and not force:
            raise UserError(
                f"--to {to}: exists (edits made to it would be lost); pass --force to replace "
                "it, or write to another --to"
            )
        to.parent.mkdir(parents=True, exist_ok=True)
        to.write_text(render_yaml(settings, inferred, to.parent), encoding="utf-8")
        _done(f"wrote {to}")

    _guard(debug, action)


@app.command()
def plan(
    config: ConfigOpt = None,
    crm: CrmOpt = None,
    transactions: TxOpt = None,
    social: SocialOpt = None,
    support: SupportOpt = None,
    phone_region: RegionOpt = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Show how many candidate pairs each blocking rule would produce, before running."""
    from cxunify.pipeline import plan as make_plan

    def action() -> None:
        settings = _load(config, _flags(crm, transactions, social, support), phone_region, False)
        _note_duckdb_only(settings, "plan")
        result = make_plan(settings)
        if as_json:
            print(jsontext.dumps(result))
            return
        grid = Table(title=f"Blocking plan: {result['nodes']:,} distinct identities")
        for column in ("rule", "blocks", "pairs", "skipped keys", "pairs in skipped keys"):
            grid.add_column(column, justify="left" if column == "rule" else "right")
        for rule in result["rules"]:
            grid.add_row(
                rule["rule"],
                f"{rule['blocks']:,}",
                f"{rule['pairs']:,}",
                f"{rule['skipped_keys']:,}",
                f"{rule['skipped_pairs']:,}",
            )
        stdout.print(grid)
        # The sum over the rules: a pair found by several is counted by each here, and once
        # by the run, whose candidate pairs can be far fewer.
        stdout.print(
            f"at most {result['total_pairs_upper_bound']:,} candidate pairs: the sum over the "
            "rules, a pair found by several rules counted by each (the run counts it once)",
            soft_wrap=True,
        )
        for rule in result["rules"]:
            if rule["explodes"]:
                _say(
                    f"Warning: rule '{rule['rule']}' would produce {rule['pairs']:,} pairs; "
                    "add a key to it or lower matching.max_block_size"
                )
            if rule["skipped_keys"]:
                skipped = _count(rule["skipped_keys"], "key value")
                _say(
                    f"Note: rule '{rule['rule']}' skips {skipped} shared by more than "
                    f"{_count(result['max_block_size'], 'identity')}"
                )

    _guard(debug, action)


@app.command()
def train(
    to: Annotated[Path, typer.Option("--to", help="Where to write the model (JSON).")],
    config: ConfigOpt = None,
    crm: CrmOpt = None,
    transactions: TxOpt = None,
    social: SocialOpt = None,
    support: SupportOpt = None,
    phone_region: RegionOpt = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="CSV of labelled pairs: train a logistic regression."),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Fit the match model and save it, for `cxunify unify --model`."""
    from cxunify.ingest import local_files
    from cxunify.model import MatchModel
    from cxunify.output import refuse_output_file
    from cxunify.pipeline import train as fit

    def action() -> None:
        settings = _load(config, _flags(crm, transactions, social, support), phone_region, False)
        _note_duckdb_only(settings, "train")
        # Not over what it reads: the exports, or the labels.
        read = [*local_files(settings), *([labels] if labels is not None else [])]
        refuse_output_file(to, "--to", inputs=read, example="model.json")
        fitted = fit(settings, labels)
        to.parent.mkdir(parents=True, exist_ok=True)
        to.write_text(fitted.to_json() + "\n", encoding="utf-8")
        described = (
            f"EM, {_count(fitted.iterations, 'iteration')}, "
            + ("converged" if fitted.converged else "NOT converged")
            if isinstance(fitted, MatchModel)
            else f"logistic regression on {fitted.labelled_pairs:,} labelled pairs"
        )
        _done(f"model ({described}) → {to}")
        _warn(getattr(fitted, "warnings", []))

    _guard(debug, action)


class _QueryCommand(TyperCommand):
    """`cxunify sql`, whose query may start with an SQL comment: ``"-- customers\nSELECT ..."``
    was read as an unknown option ('No such option'). An argument that starts with ``-`` and
    holds a space or a line break in its option name is no option (none has one), so it goes
    after ``--``, where the parser takes it as the query."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" not in args:
            queries = [a for a in args if _COMMENT_FIRST.match(a)]
            if queries:
                args = [a for a in args if not _COMMENT_FIRST.match(a)] + ["--", *queries]
        return super().parse_args(ctx, args)


_COMMENT_FIRST = re.compile(r"-+[^=\s]*\s")  # '-- c', '--c\nSELECT'; not '--to=a b'


@app.command(cls=_QueryCommand)
def sql(
    query: Annotated[str, typer.Argument(help="SQL over the views: profiles, identity_map, ...")],
    out: OutOpt = Path("out"),
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="table | csv | json | parquet (default: as the --to file is named, else table)",
            show_default=False,
        ),
    ] = None,
    to: Annotated[
        Path | None,
        typer.Option(
            "--to",
            help="Write the result to a file, in the format its name ends in (.csv, .json, "
            ".ndjson, .jsonl, .parquet; csv for any other).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="Rows shown in table format.", min=0)] = 50,
    debug: DebugOpt = False,
) -> None:
    """Run SQL over an output folder's tables and print or export the result."""
    from cxunify.output import refuse_output_file
    from cxunify.query import export, result_format, run_query

    def action() -> None:
        shown = result_format(fmt, to)
        if to is not None:
            written = "csv" if shown == "table" else shown
            refuse_output_file(to, "--to", out, example=f"result.{written}")
        result = run_query(out, query, text=shown != "parquet")
        _warn(result.warnings)
        try:
            if shown == "table" and to is None:
                _print_table(result.reader, limit)
            else:
                rows = export(result.reader, "csv" if shown == "table" else shown, to)
                if to is not None:
                    _done(f"{_count(rows, 'row')} → {to}")
        finally:
            result.close()

    _guard(debug, action)


def _text(value: Any) -> Text:
    """A value from the data as a table cell, shown as it is: rich reads brackets in a plain
    string as markup, so a city '[bold]' vanished and a name '[/b]' stopped the command. A
    control character is shown as its code (\\x1B), as DuckDB shows a BLOB's: an escape in a
    ticket's text went to the terminal as it was (turning the screen red, moving the cursor)."""
    text = "" if value is None else str(value)
    return Text(_CONTROL.sub(lambda found: f"\\x{ord(found[0]):02X}", text))


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # not a tab or a line break


def _print_table(reader: Any, limit: int) -> None:
    from cxunify.query import text_rows

    names = [_text(name) for name in reader.schema.names]
    grid = Table(show_header=True, header_style="bold")
    for name in names:
        grid.add_column(name, overflow="fold")
    rows: list[list[Text]] = []
    total = 0
    for batch in reader:
        # Only the rows shown become Python values: the rest are counted (a query of millions
        # of rows took a minute to show its first 50). Each cell is as --format csv writes it.
        for values in text_rows(batch.slice(0, limit - len(rows))):
            rows.append([_text(v) for v in values])
            grid.add_row(*rows[-1])
        total += batch.num_rows
    if _fits([names, *rows], stdout.width):
        stdout.print(grid)
    else:
        # Too wide for the terminal: its columns were cut to a letter or to nothing, so that
        # SELECT * FROM profiles showed neither names nor values. A row at a time, a line a column.
        for number, row in enumerate(rows, start=1):
            stdout.rule(f"row {number}", align="left")
            record = Table.grid(padding=(0, 2))
            record.add_column(style="bold", overflow="fold")
            record.add_column(overflow="fold")
            for name, value in zip(names, row, strict=True):
                record.add_row(name, value)
            stdout.print(record)
    shown = len(rows)
    more = f", first {shown} shown" if total > shown else ""
    _say(f"{_count(total, 'row')}{more}")


def _fits(lines: list[list[Text]], width: int) -> bool:
    """Whether a table of `lines` (the header first) fits in `width` with each column as wide
    as its longest word, up to 10: a longer one is folded."""
    columns = zip(*lines, strict=True)
    needed = 1 + sum(
        3 + max(min(cell_len(word), 10) for text in column for word in [*text.plain.split(), ""])
        for column in columns
    )
    return needed <= width


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="The earlier output folder.")],
    new: Annotated[Path, typer.Argument(help="The later output folder.")],
    to: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write every change to this file, in the format its name ends in (.parquet, "
            ".csv, .json, .ndjson, .jsonl; csv for any other), as sql --to does.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(help="Rows shown on screen (0: the counts only).", min=0)
    ] = 50,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """List customers created, merged, split, changed and removed between OLD and NEW."""
    from cxunify.diff import diff_outputs, write_changes
    from cxunify.output import refuse_output_file

    def action() -> None:
        if to is not None:
            refuse_output_file(to, "--out", old, new, example="changes.parquet")
        result = diff_outputs(old, new)
        if to is not None:
            write_changes(result, to)
        if as_json:
            print(jsontext.dumps({"counts": result.counts, "out": str(to) if to else None}))
            return
        if limit:
            _print_table(result.changes.to_reader(), limit)
        _say(", ".join(f"{n:,} {kind}" for kind, n in result.counts.items()))
        if to is not None:
            _done(f"{_count(result.changes.num_rows, 'change')} → {to}")

    _guard(debug, action)


@app.command()
def verify(
    folder: Annotated[
        Path | None,
        typer.Argument(help="The output folder to check (the same as --out).", show_default=False),
    ] = None,
    out_opt: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output folder. [default: out]")
    ] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Check every file of an output folder against the SHA-256 its run recorded."""
    from cxunify.verify import verify_output

    # The folder as the other commands take it (--out, default out), or as an argument.
    out = folder or out_opt or Path("out")

    def action() -> None:
        if folder is not None and out_opt is not None and folder != out_opt:
            raise UserError(f"give {folder} or --out {out_opt}, not both")
        checked = verify_output(out)
        damaged = [c for c in checked if c.problem is not None]
        if as_json:
            files = [
                {"file": c.file, "ok": c.problem is None, "problem": c.problem} for c in checked
            ]
            print(jsontext.dumps({"out": str(out), "files": files, "damaged": len(damaged)}))
        else:
            for c in damaged:
                stderr.print(
                    f"{c.file}: {c.problem}", markup=False, highlight=False, soft_wrap=True
                )
        if damaged:
            first = damaged[0]
            raise OutputError(
                f"{out}: {len(damaged)} of {len(checked)} files are not as their run wrote them "
                f"(first: {first.file}, {first.problem}); run a full `cxunify unify` to rebuild "
                "them (restore the folder from a backup if an id file is among them: "
                "identity_map, customer_ids, id_redirects, removed_records)"
            )
        if not as_json:
            _done(f"{len(checked)} files of {out} are as their run wrote them")

    _guard(debug, action)


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the exports.")] = Path(
        "sample_data"
    ),
    people: Annotated[int, typer.Option(help="How many people to simulate.", min=1)] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; same seed, same bytes.")] = 7,
    force: Annotated[
        bool, typer.Option("--force", help="Replace exports in --out that differ from these.")
    ] = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Generate realistic messy exports of all four kinds, with a truth file."""
    from cxunify.sample import write_sample

    def action() -> None:
        summary = write_sample(people, seed, out, force=force)
        if not quiet:
            files = ", ".join(f"{name} {rows:,}" for name, rows in summary.files.items())
            _done(f"{summary.people:,} people → {files} in {out}")

    _guard(debug, action)


@app.command()
def explain(
    target: Annotated[
        str | None,
        typer.Argument(
            help="A customer_id or a record as SOURCE:ID (the same as --customer or --record).",
            show_default=False,
        ),
    ] = None,
    out: OutOpt = Path("out"),
    customer: Annotated[
        str | None, typer.Option("--customer", help="A customer_id, e.g. c_0123456789abcdef.")
    ] = None,
    record: Annotated[
        str | None, typer.Option("--record", help="A source record as SOURCE:ID, e.g. crm:C001.")
    ] = None,
    waterfalls: Annotated[
        int, typer.Option("--waterfalls", help="Links drawn as a weight waterfall.", min=0)
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print the explanation as JSON.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Show why a customer's records were joined: records, links, weights and guards."""
    from cxunify.explain import explain as explain_customer

    def action() -> None:
        nonlocal customer, record
        if target is not None:
            if customer is not None or record is not None:
                raise UserError(f"give {target} or --customer/--record, not both")
            # A record is SOURCE:ID; a customer id never holds a colon.
            record, customer = (target, None) if ":" in target else (None, target)
        explanation = explain_customer(out, customer, record)
        if as_json:
            print(jsontext.dumps(explanation.as_dict()))
            return
        _print_explanation(explanation, waterfalls)

    _guard(debug, action)


def _print_explanation(explanation: Any, waterfalls: int) -> None:
    records = explanation.records
    stdout.print(
        f"[bold]{explanation.customer_id}[/]: {_count(len(records), 'source record')}, "
        f"{_count(sum(link.kept for link in explanation.links), 'link')} kept"
        + (f" (threshold {explanation.threshold})" if explanation.threshold is not None else "")
    )
    stdout.print(_records_table(records))
    _print_links(explanation, waterfalls)
    if explanation.traits:
        stdout.print(_traits_table(explanation.traits))


def _traits_table(reasons: list[Any]) -> Table:
    """Each stage, the segment and the score, with the rule that gave it."""
    grid = Table(show_header=True, header_style="bold", title="Stages and score: why")
    grid.add_column("trait", style="dim")
    grid.add_column("value")
    grid.add_column("why", overflow="fold")
    for reason in reasons:
        grid.add_row(reason.trait, _text(reason.value), _text(reason.why))
    return grid


def _print_links(explanation: Any, waterfalls: int) -> None:
    records = explanation.records
    if not explanation.links:
        # Every link is in links.parquet, so records of one customer with none between them
        # were one identity before matching (identical in every identity field).
        stdout.print(
            "No scored pairs touch this customer's record."
            if len(records) == 1
            else f"No scored pairs touch this customer's records: its {len(records)} records "
            "are identical in every identity field as matching reads them (its standard forms: "
            "without case or accents, Zoë and Zoe alike), so they were one identity before "
            "any pair was scored."
        )
        return
    links = Table(show_header=True, header_style="bold", title="Scored pairs")
    # Record names are what a reader follows: on a wide terminal they get their width first.
    longest = max(len(side) for link in explanation.links for side in (link.left, link.right))
    name_width = min(longest, 24) if stdout.width >= 110 else None
    for column in ("left", "right", "rule", "weight", "probability", "status"):
        links.add_column(
            column,
            justify="right" if column in ("weight", "probability") else "left",
            overflow="fold",
            min_width=name_width if column in ("left", "right") else None,
        )
    for link in explanation.links:
        colour = "green" if link.kept else ("red" if link.guard else "yellow")
        links.add_row(
            _text(link.left),
            _text(link.right),
            _text(link.blocking_rule),
            f"{link.match_weight:.2f}",
            f"{link.match_probability:.4f}",
            f"[{colour}]{link.status}[/]" + (" (forced by rule)" if link.forced else ""),
        )
    stdout.print(links)
    for link in explanation.links[:waterfalls]:
        stdout.print(_waterfall(link))
    for split in explanation.guard_splits:
        stdout.print(
            f"Guard '{split['guard']}' refused {split['links_refused']} link(s) to "
            f"{split['other_customer_id']}",
            markup=False,
            soft_wrap=True,
        )


def _count(n: int, noun: str) -> str:
    """`n` `noun`s, in the singular for one: '1 row', '2 rows', '1 identity', '3 identities'."""
    if n == 1:
        return f"{n:,} {noun}"
    return f"{n:,} {noun[:-1]}ies" if noun.endswith("y") else f"{n:,} {noun}s"


# Width a record's column needs to be read when records are shown side by side.
RECORD_COLUMN_WIDTH = 18
# A value held by at most this many records names them; a commoner one gives its count.
NAMED_HOLDERS = 3
# Distinct values of a field shown, the commonest first; the others are counted, with a range.
SHOWN_VALUES = 5


def _records_table(records: list[dict[str, Any]]) -> Table:
    """A customer's records side by side (a column per record, a row per field any record
    has) when they fit the terminal; else each field's distinct values, the commonest first,
    with the records holding the rare ones: 40 columns in 80 characters showed nothing."""
    skip = {"source", "source_record_id", "customer_id"}
    fields = [n for n in records[0] if n not in skip and any(r[n] is not None for r in records)]
    names = [f"{r['source']}:{r['source_record_id']}" for r in records]
    if 14 + RECORD_COLUMN_WIDTH * len(records) <= stdout.width:
        grid = Table(show_header=True, header_style="bold", title="Source records")
        grid.add_column("field", style="dim")
        for name in names:
            grid.add_column(_text(name), overflow="fold")
        for field in fields:
            grid.add_row(field, *(_text(r[field]) for r in records))
        return grid
    grid = Table(
        show_header=True,
        header_style="bold",
        title=f"Source records: the values of their {len(records)} records",
    )
    grid.add_column("field", style="dim")
    grid.add_column("values (records holding each)", overflow="fold")
    for field in fields:
        holders: dict[str, list[str]] = {}
        for name, r in zip(names, records, strict=True):
            holders.setdefault("" if r[field] is None else str(r[field]), []).append(name)
        ranked = sorted(holders.items(), key=lambda item: (-len(item[1]), item[0]))
        shown = []
        for value, held_by in ranked[:SHOWN_VALUES]:
            who = ", ".join(held_by) if len(held_by) <= NAMED_HOLDERS else f"{len(held_by)}"
            shown.append(f"{value or '(none)'} ({who})")
        others = sorted(value for value, _ in ranked[SHOWN_VALUES:] if value)
        if others:
            shown.append(f"{len(others)} other values, {others[0]} to {others[-1]}")
        grid.add_row(field, _text("; ".join(shown)))
    return grid


WATERFALL_WIDTH = 30


def _waterfall(link: Any) -> Table:
    """The prior and each field's partial weight as bars starting where the running sum is."""
    steps = [("prior", "", link.prior_weight)] + [
        (f.comparison, f.level, f.weight) for f in link.fields
    ]
    running, spans = 0.0, []
    for _, _, weight in steps:
        spans.append((running, running + weight))
        running += weight
    low = min(0.0, *(min(s) for s in spans))
    high = max(0.0, *(max(s) for s in spans))
    scale = WATERFALL_WIDTH / ((high - low) or 1.0)
    grid = Table(
        title=_text(f"{link.left} ~ {link.right}"), show_header=True, header_style="bold", box=None
    )
    grid.add_column("comparison", no_wrap=True)
    grid.add_column("level", max_width=18)
    grid.add_column("weight", justify="right")
    grid.add_column("", no_wrap=True, min_width=WATERFALL_WIDTH + 1)
    grid.add_column("sum", justify="right")
    for (name, level, weight), (start, end) in zip(steps, spans, strict=True):
        left = round((min(start, end) - low) * scale)
        width = max(1, round(abs(weight) * scale)) if weight else 0
        colour = "green" if weight > 0 else "red"
        bar = " " * left + (f"[{colour}]" + "█" * width + "[/]" if width else "│")
        grid.add_row(name, level, f"{weight:+.2f}", bar, f"{end:.2f}")
    grid.add_row(
        "[bold]match weight[/]",
        f"p = {link.match_probability:.6f}",
        f"{link.match_weight:.2f}",
        "",
        "linked" if link.kept else "not linked",
    )
    return grid


@app.command()
def evaluate(
    truth: Annotated[
        Path, typer.Option("--truth", help="CSV or Parquet: source, source_record_id, person_id.")
    ],
    out: OutOpt = Path("out"),
    worst: Annotated[
        int, typer.Option("--worst", help="False merges and missed links listed.", min=0)
    ] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON.")] = False,
    debug: DebugOpt = False,
) -> None:
    """Measure matching quality against a truth file: pairwise, B-cubed, trade-off, errors."""
    from cxunify.evaluate import assess

    def action() -> None:
        evaluation = assess(out, truth, worst)
        _warn(evaluation.warnings)
        if as_json:
            print(jsontext.dumps(evaluation.as_dict()))
            return
        _print_evaluation(evaluation)

    _guard(debug, action)


def _score(value: float | None) -> str:
    """A precision, recall or F1 to four places; – for one of no pairs (None)."""
    return "–" if value is None else f"{value:.4f}"


def _print_evaluation(evaluation: Any) -> None:
    q = evaluation.quality
    grid = Table(title="Matching quality", show_header=True, header_style="bold")
    for column in ("measure", "precision", "recall", "F1"):
        grid.add_column(column, justify="left" if column == "measure" else "right")
    grid.add_row(
        "pairwise",
        _score(q.pairwise_precision),
        _score(q.pairwise_recall),
        _score(q.pairwise_f1),
    )
    grid.add_row(
        "B-cubed", _score(q.bcubed_precision), _score(q.bcubed_recall), _score(q.bcubed_f1)
    )
    stdout.print(grid)
    left_out = q.truth_rows_not_in_output
    stdout.print(
        _count(q.records, "record")
        + (
            f" (the truth's other {_count(left_out, 'row')} "
            f"{'names' if left_out == 1 else 'name'} none of the output)"
            if left_out
            else ""
        )
        + f": {_count(q.true_customers, 'true customer')}, {q.predicted_customers:,} predicted; "
        f"{evaluation.split_people:,} {'person' if evaluation.split_people == 1 else 'people'} "
        "split over several customers, "
        f"{_count(evaluation.mixed_customers, 'customer')} mixing people; "
        f"largest customer {_count(q.largest_cluster, 'record')}"
    )
    shares = [q.pairwise_precision, q.pairwise_recall]
    shares += [point[name] for point in evaluation.curve for name in ("precision", "recall")]
    stdout.print(
        f"{_count(q.true_pairs, 'true pair')}, {q.predicted_pairs:,} predicted, "
        f"{q.correct_pairs:,} correct"
        + (
            f"; of the {q.true_pairs - q.correct_pairs:,} true pairs split, "
            f"{evaluation.missed_links:,} were scored (below the threshold, refused by a guard, "
            f"or joined elsewhere) and {evaluation.missed_pairs_unscored:,} never were (no "
            "blocking rule made them candidates, or they scored under links_floor)"
            if q.true_pairs > q.correct_pairs
            else ""
        )
        + ("; – is a share of no pairs" if None in shares else "")
    )
    curve = Table(
        title="Scored pairs over thresholds (recall relative to true pairs scored)",
        show_header=True,
        header_style="bold",
    )
    for column in ("threshold", "pairs", "true pairs", "precision", "recall", "F1"):
        curve.add_column(column, justify="right")
    for point in evaluation.curve:
        mark = " ◀" if point["threshold"] == evaluation.threshold else ""
        curve.add_row(
            f"{point['threshold']:g}{mark}",
            f"{point['pairs']:,}",
            f"{point['true_pairs']:,}",
            _score(point["precision"]),
            _score(point["recall"]),
            _score(point["f1"]),
        )
    stdout.print(curve)
    for title, rows, total, extra in (
        ("Worst false merges", evaluation.worst_false_merges, evaluation.false_merge_links, None),
        ("Worst missed links", evaluation.worst_missed_links, evaluation.missed_links, "why_apart"),
    ):
        review = Table(title=f"{title} ({total:,} in all)", show_header=True, header_style="bold")
        for column in (
            "left",
            "person",
            "right",
            "person",
            "weight",
            "rule",
            *([extra] if extra else []),
        ):
            review.add_column(
                column, justify="right" if column == "weight" else "left", overflow="fold"
            )
        for row in rows:
            review.add_row(
                _text(f"{row['left_source']}:{row['left_source_record_id']}"),
                _text(row["left_person_id"]),
                _text(f"{row['right_source']}:{row['right_source_record_id']}"),
                _text(row["right_person_id"]),
                f"{row['match_weight']:.2f}",
                _text(row["blocking_rule"]),
                *([_text(row[extra])] if extra else []),
            )
        stdout.print(review)


@app.command()
def report(
    out: OutOpt = Path("out"),
    to: Annotated[
        Path | None, typer.Option("--to", help="Where to write it (default OUT/report.html).")
    ] = None,
    as_json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write report.html: one self-contained page of charts about an output folder."""
    from cxunify.report import build_report

    def action() -> None:
        summary = build_report(out, to)
        if as_json:
            print(jsontext.dumps(summary.as_dict()))
            return
        _done(
            f"{len(summary.charts)} charts → {summary.path} "
            f"({summary.bytes / 1e6:.1f} MB, {summary.seconds:.1f} s)"
        )
        for key, reason in summary.skipped.items():
            _say(f"Note: chart '{key}' left out: {reason}")

    _guard(debug, action)


if __name__ == "__main__":  # pragma: no cover
    main()  # (not app(): main maps usage errors to exit 1 and cleans up on SIGTERM)
