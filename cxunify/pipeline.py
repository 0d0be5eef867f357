"""Runs the stages in order, times them, and proves that every input row is accounted for.

``unify(config, out_dir)`` is the Python API and what ``cxunify unify`` calls.
"""

from __future__ import annotations

import contextlib
import functools
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from cxunify import (
    block,
    cluster,
    gates,
    identity,
    ingest,
    output,
    profile,
    score,
    scratch,
    standardize,
    update,
)
from cxunify.compare import COMPARISON_BY_NAME, ComparisonSpec
from cxunify.config import Config
from cxunify.engine import DuckDBEngine
from cxunify.engine import handover as spark_engine
from cxunify.engine.hadoop import HadoopPath, is_uri, jvm_errors, jvm_reason
from cxunify.errors import CxunifyError, OutputError, UserError
from cxunify.lock import output_lock, reading_lock
from cxunify.model import MatchModel
from cxunify.trait_reasons import recorded_settings


class Progress(Protocol):
    """What the pipeline tells whoever shows progress (the CLI uses rich)."""

    def start(self, stage: str, description: str) -> None: ...
    def advance(self, stage: str, fraction: float) -> None: ...
    def finish(self, stage: str) -> None: ...


class SilentProgress:
    def start(self, stage: str, description: str) -> None:
        pass

    def advance(self, stage: str, fraction: float) -> None:
        pass

    def finish(self, stage: str) -> None:
        pass


@dataclass
class RunResult:
    """What a run did; ``manifest`` is exactly what was written to run.json."""

    out_dir: output.Folder
    manifest: dict[str, Any]
    stages: dict[str, float] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return self.manifest["counts"]

    @property
    def warnings(self) -> list[str]:
        """What the run did that its user should know of, though it did not stop it."""
        return self.manifest.get("warnings", [])

    def summary(self) -> dict[str, Any]:
        """The one-object summary ``--json`` prints."""
        return {
            "status": "ok",
            "out": str(self.out_dir),
            "counts": self.counts,
            "stages_seconds": self.stages,
            "config_hash": self.manifest["config_hash"],
            "ids": self.manifest["ids"],
            "quality": self.manifest["quality"],
            "warnings": self.warnings,
            "rejected_removed": self.manifest.get("rejected_removed"),
        }


STAGES = {
    "ingest": "Reading exports",
    "standardize": "Standardising",
    "block": "Blocking",
    "compare": "Comparing pairs",
    "score": "Scoring",
    "cluster": "Clustering",
    "identify": "Assigning customer ids",
    "profile": "Building profiles",
    "write": "Writing outputs",
}


def unify(
    config: Config,
    out_dir: Path | str,
    progress: Progress | None = None,
    model: MatchModel | score.LogisticModel | None = None,
    previous: Path | str | None = None,
    spark_session: Any = None,
) -> RunResult:
    """Unify the sources of `config` into the output folder `out_dir`.

    Example::

        from pathlib import Path
        from cxunify import load_config, unify
        result = unify(load_config(Path("configs/sample.yaml")), Path("out"))
        print(result.counts["profiles"])

    With `model` (from ``cxunify train``), scoring reuses it instead of fitting one.
    With ``engine: spark`` every stage after reading the exports runs on Spark, in
    `spark_session` if given; `out_dir` may then be on any store Spark writes
    (``s3a://...``, ``hdfs://...``, ``abfss://...``; see `output`), and the sources' paths on
    any store it reads (each export is copied to this machine to be read; see `ingest`).
    Customer ids are carried over from the output in `previous` (default: `out_dir` itself).
    One run at a time may write a local `out_dir` (a lock file beside it); a run killed
    earlier leaves nothing behind that this one does not clean up.
    """
    config.check_survivorship()
    if config.output.hash_pii:
        output.pii_key()  # a missing key stops the run before any work, not at the write
    if is_uri(out_dir) or (previous is not None and is_uri(previous)):
        return _unify_on_store(
            config,
            str(out_dir),
            progress,
            model,
            None if previous is None else str(previous),
            spark_session,
        )
    if previous is not None:
        output.require_folder(previous)
    out_dir = Path(out_dir).resolve()
    output.check_replaceable(out_dir)
    read_from = out_dir if previous is None else Path(previous).resolve()
    # The folder read is locked too, as an update elsewhere locks it: a run replacing it
    # meanwhile would have its ids read from two outputs, one file from each.
    elsewhere = read_from != out_dir and read_from.is_dir()
    with output_lock(out_dir), reading_lock(read_from, out_dir) if elsewhere else nullcontext():
        output.remove_leftovers(out_dir)
        if (out_dir / output.MANIFEST).exists() and not (out_dir / output.DATABASE).exists():
            output.write_database(out_dir)  # a run was killed between the swap and this file
        prior = output.find_previous(Path(previous or out_dir))
        if previous is not None and prior is None:
            raise OutputError(f"{previous}: --previous is not a cxunify output folder")
        if previous is not None:
            update.check_not_nested(Path(previous).resolve(), out_dir)
        return _run(config, out_dir, progress or SilentProgress(), model, prior, spark_session)


def _unify_on_store(
    config: Config,
    out_dir: str,
    progress: Progress | None,
    model: MatchModel | score.LogisticModel | None,
    previous: str | None,
    spark_session: Any,
) -> RunResult:
    """`unify` into an output folder on a store Spark writes (see `output` for what replacing
    it guarantees there). There is no lock file on a store: scheduling one run at a time per
    output is the caller's part, and staging folders a killed run left are not removed."""
    if config.engine.name != "spark":
        raise UserError(
            f"{out_dir}: an output on a store needs the spark engine (--engine spark); "
            "DuckDB writes local folders"
        )
    if not is_uri(out_dir):
        raise UserError(f"{previous}: --previous on a store needs --out on a store too")
    session, started = spark_engine.session_for(config, spark_session)
    try:
        try:
            out = HadoopPath(out_dir, session)
            output.check_replaceable(out)
            prior = output.find_previous(HadoopPath(previous or out_dir, session))
        except jvm_errors() as exc:  # no connector for the scheme, no credentials, no bucket
            raise OutputError(
                f"{previous or out_dir}: cannot reach it: {jvm_reason(exc)}"
            ) from None
        if previous is not None and prior is None:
            raise OutputError(f"{previous}: --previous is not a cxunify output folder")
        return _run(config, out, progress or SilentProgress(), model, prior, session)
    finally:
        if started:
            session.stop()


class Stages:
    """Times each stage, notes the engine it ran on, and reports it to the progress display.

    ``engine`` is the engine the next stages run on; the pipeline sets it when it changes.
    """

    def __init__(self, progress: Progress, engine: str = "duckdb"):
        self.progress = progress
        self.engine = engine
        self.timings: dict[str, float] = {}
        self.engines: dict[str, str] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[Callable[[float], None]]:
        self.progress.start(name, STAGES[name])
        began, engine = time.perf_counter(), self.engine
        yield lambda fraction: self.progress.advance(name, fraction)
        # A stage may run in more than one stretch (the write stage does): its time adds up.
        self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - began, 3)
        self.engines[name] = engine
        self.progress.finish(name)


def _run(
    config: Config,
    out_dir: output.Folder,
    progress: Progress,
    model: MatchModel | score.LogisticModel | None,
    prior: identity.PreviousOutput | None,
    spark_session: Any = None,
) -> RunResult:
    started = datetime.now(UTC)
    staging = output.staging_dir(out_dir)
    # DuckDB's spill files and the files it hands to Spark are local, wherever the output is.
    scratches = contextlib.ExitStack()
    local_dir = (
        staging if isinstance(staging, Path) else scratches.enter_context(scratch.folder("run"))
    )
    stage = Stages(progress)
    engine: Any = DuckDBEngine(config.engine, temp_dir=local_dir / ".spill")
    # Ingest always runs on DuckDB (local files, line-numbered rejects); on Spark the rest
    # runs there, from the mapped rows handed over as Parquet.
    local, spark = engine, None
    try:
        if config.engine.name == "spark":
            spark = spark_engine.open_spark(config, staging, spark_session)
        with stage("ingest") as advance:
            # Exports on a store are copied here through the session's Hadoop FileSystem.
            session = spark.spark if spark is not None else None
            ingested = ingest.ingest(engine, config, local_dir / ".work", advance, session)
            if spark is not None:
                spark_engine.hand_over(local, spark, local_dir / ".work" / "handover")
                _close(local)
                engine, local = spark, None
                stage.engine = spark.name
        with stage("standardize"):
            records = standardize.standardize(engine, config)
            emails_read, emails_unusable = standardize.email_counts(engine)
            quote_values = not config.output.hash_pii
            phone_warnings = (
                *standardize.order_warnings(engine, quote_values),
                *standardize.phone_warnings(engine, config),
                *standardize.unread_warnings(engine, quote_values),
            )
            # Each stage's input is dropped once read: at millions of rows they are gigabytes.
            engine.drop(ingest.MAPPED)
        with stage("block"):
            nodes, junk = block.collapse_nodes(
                engine, config.matching.blocklist, config.matching.max_records_per_value
            )
            pairs = block.candidate_pairs(
                engine, config.matching.blocking, config.matching.max_block_size
            )
        comparisons = _comparisons(config)
        if model is not None:
            score.check_model(model, comparisons)
        with stage("compare"):
            score.build_gammas(engine, comparisons, config.matching.rules)
        with stage("score"):
            fitted = model or score.train(
                engine,
                comparisons,
                config.matching.blocking,
                config.matching.seed,
                config.matching.max_iterations,
            )
            score_and_keep(engine, fitted, comparisons, config, staging)
        with stage("cluster"):
            links = link_components(engine, config.matching.threshold)
            cluster.apply_guards(
                engine,
                f"SELECT * FROM {cluster.LINKS}",
                cluster.Guards.from_config(config.matching.guards),
                identity.NODE_NAMES_SQL,
            )
            split = update.components_split(engine)
        counts = {
            "rows_in": ingested.rows_in,
            "rows_rejected": ingested.rows_rejected,
            "rows_mapped": records,
            "nodes": nodes,
            "candidate_pairs": pairs,
            "links": links,
            "links_refused_by_guards": engine.count(cluster.REFUSED),
            "components_split_by_guards": split,
            "junk_emails": junk["email_std"],
            "junk_phones": junk["phone"],
            "emails_read": emails_read,
            "emails_unusable": emails_unusable,
        }
        manifest = publish(
            engine,
            config,
            Published(
                out_dir,
                staging,
                started,
                prior,
                fitted,
                model is not None,
                warnings=(*ingested.warnings, *phone_warnings),
            ),
            stage,
            [vars(f) for f in ingested.files],
            counts,
        )
    except BaseException:
        _close(local, spark)
        output.remove_tree(staging)
        raise
    finally:
        scratches.close()
    return RunResult(out_dir=out_dir, manifest=manifest, stages=stage.timings)


def _email_warning(counts: dict[str, Any]) -> list[str]:
    """A warning when most emails read are no use to match: a file made by hand to try
    cxunify, written with ann@example.com, matched on nothing but names, without a word."""
    read, unusable = counts.get("emails_read", 0), counts.get("emails_unusable", 0)
    if not read or unusable * 2 < read:
        return []
    return [
        f"{unusable:,} of the {read:,} emails read are not addresses or are placeholders "
        "(test@test.com, any address at example.com, example.org, example.net, test.com or "
        ".invalid, domains reserved for examples) and are not used to match"
    ]


@dataclass
class Published:
    """Where a run writes and what it carries over; see `publish`."""

    out_dir: output.Folder
    staging: output.Folder
    started: datetime
    prior: identity.PreviousOutput | None
    model: MatchModel | score.LogisticModel
    model_reused: bool
    stored_sources: dict[str, list] | None = None  # an update's sources not re-read
    unchanged: profile.Unchanged | None = None  # an update's golden records to copy
    state_delta: update.StateDelta | None = None  # an update's stored state, to add to
    warnings: tuple[str, ...] = ()  # what reading the exports found the user should know of
    # Rows read and rejected of them, when not the run's counts (an update's: tonight's).
    rows_read: tuple[int, int] | None = None


def score_and_keep(
    engine: DuckDBEngine,
    model: MatchModel | score.LogisticModel,
    comparisons: tuple[ComparisonSpec, ...],
    config: Config,
    staging: output.Folder,
    gammas_saved: bool = False,
) -> None:
    """Score the compared pairs (down to the links floor), keep their comparison levels in the
    state an update reads (unless an update `gammas_saved` its delta), and drop scoring's
    inputs."""
    score.score_pairs(
        engine, model, comparisons, min(output.LINKS_FLOOR, config.matching.threshold)
    )
    if config.output.state and not gammas_saved:
        update.save_gammas(engine, staging, config)
    engine.drop(block.PAIRS, score.GAMMAS)


def link_components(engine: DuckDBEngine, threshold: float) -> int:
    """Links at `threshold` and their connected components, remembered for the state, before
    the guards split any; returns the number of links."""
    links = cluster.select_links(engine, threshold)
    cluster.connected_components(
        engine,
        f"SELECT node FROM {block.NODES}",
        f"SELECT left_node, right_node FROM {cluster.LINKS}",
    )
    update.remember_components(engine)
    return links


def publish(
    engine: DuckDBEngine,
    config: Config,
    run: Published,
    stage: Stages,
    inputs: list[dict[str, Any]],
    counts: dict[str, int],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Stages 7 to 9 once clusters exist: ids, profiles, outputs and the state an update
    needs, the quality gates, then the swap. Returns the manifest written to run.json.

    Closes `engine`. On a failed gate the output is set aside and GateFailed is raised.
    """
    keyed = config.output.hash_pii
    with stage("identify"):
        if keyed:
            engine.set_pii_key(output.pii_key())
        customers = identity.assign_customer_ids(engine, keyed)
        churn = identity.carry_over_ids(engine, run.prior, run.started, keyed)
    write = functools.partial(
        output.write_tables,
        engine,
        run.staging,
        config.output.compression,
        config.matching.comparisons,
        config.output.hash_pii,
    )
    with stage("write"):
        # links.parquet needs only the scored pairs and the ids. Written now, the scored pairs
        # (the largest table: a row per candidate pair kept) leave memory before the profiles
        # are built, so DuckDB spills less of what follows to disk.
        written = write(names=("links",))
        engine.drop(score.SCORED)
    with stage("profile"):
        profiled = profile.build_profiles(
            engine,
            config.profile,
            run.unchanged,
            now=run.started.replace(tzinfo=None),
            quote_values=not config.output.hash_pii,
        )
        if extra and "update" in extra:
            extra["update"]["golden_records_copied"] = profiled.golden_copied
            extra["update"]["traits_copied"] = profiled.traits_copied
            extra["update"]["sentiment_copied"] = profiled.sentiment_copied
    with stage("write"):
        written |= write(names=tuple(n for n in output.OUTPUT_QUERIES if n != "links"))
        if config.output.state:
            update.save_state(
                engine, run.staging, config, run.model, run.stored_sources, run.state_delta
            )
        counts = {
            **counts,
            "identity_map_rows": written["identity_map"]["rows"],
            "rejects_rows": written["rejects"]["rows"],
            "customers": customers,
            "profiles": profiled.profiles,
            "touchpoints": profiled.touchpoints,
            "texts_scored": profiled.texts_scored,
            "future_timestamps": profiled.future_timestamps,
            "csat_out_of_scale": profiled.csat_out_of_scale,
            "currency_conflicts": profiled.currency_conflicts,
        }
        _check_accounting(counts)
        rows_in, rejected = run.rows_read or (counts["rows_in"], counts["rows_rejected"])
        figures = gates.measure(
            engine, rows_in, rejected, churn, run.prior is not None, run.rows_read is not None
        )
    engine.close()
    for name in (".spill", ".work"):
        output.remove_tree(run.staging / name)
    key = output.pii_key() if config.output.hash_pii else None
    manifest = _manifest(config, inputs, counts, stage, run.started, key)
    manifest["model"] = _model_summary(run.model, run.model_reused)
    manifest["ids"] = churn.as_dict()
    manifest["as_of"] = profiled.as_of and profiled.as_of.isoformat()
    # What explain tells a stage's rule by (the config may have changed since).
    manifest["profile"] = recorded_settings(config.profile)
    manifest["warnings"] = [
        *output.pii_warnings(key, run.prior),
        *_email_warning(counts),
        *run.warnings,
        *profiled.warnings,
    ]
    failed = gates.failures(config.gates, figures)
    manifest["quality"] = {**figures.as_dict(), "failed": failed}
    # What the next run checks the files it reads by (see output.check_outputs).
    manifest["outputs"] = {name: written[name] for name in output.OUTPUT_QUERIES}
    manifest.update(extra or {})
    # A passing run supersedes the output a gate stopped earlier: run.json says which one
    # goes (it is removed after the swap), so the audit trail keeps what the folder held.
    manifest["rejected_removed"] = None if failed else output.superseded_rejection(run.out_dir)
    manifest = output.with_digest(manifest)
    output.write_manifest(run.staging, manifest)
    if failed:
        first = isinstance(run.out_dir, Path) and not (run.out_dir / output.MANIFEST).is_file()
        aside = output.set_aside(run.staging, run.out_dir)
        raise gates.GateFailed(
            failed, str(aside), manifest, str(run.out_dir.resolve()) if first else None
        )
    output.swap_in(run.staging, run.out_dir)
    if isinstance(run.out_dir, Path):  # DuckDB's views over a store's folders would not read
        output.write_database(run.out_dir)
    if manifest["rejected_removed"] is not None:
        output.remove_superseded(run.out_dir)
    return manifest


def _close(*engines: Any) -> None:
    for engine in engines:
        if engine is not None:
            engine.close()


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _check_accounting(counts: dict[str, int]) -> None:
    """Nothing lost, nothing silent: every row read is profiled or rejected, once."""
    if counts["rows_in"] != counts["rows_mapped"] + counts["rows_rejected"]:
        raise CxunifyError(
            f"row accounting is off: {_rows(counts['rows_in'])} in, {counts['rows_mapped']} "
            f"mapped + {counts['rows_rejected']} rejected"
        )
    if counts["identity_map_rows"] != counts["rows_mapped"]:
        mapped = counts["rows_mapped"]
        raise CxunifyError(
            f"identity map has {_rows(counts['identity_map_rows'])} for "
            f"{mapped} record{'' if mapped == 1 else 's'}"
        )
    if counts["rejects_rows"] != counts["rows_rejected"]:
        raise CxunifyError(
            f"rejects has {_rows(counts['rejects_rows'])} for {counts['rows_rejected']} rejected"
        )


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in (
        "cxunify",
        "duckdb",
        "polars",
        "pyarrow",
        "phonenumbers",
        "recordlinkage",
        "pyspark",
    ):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _manifest(
    config: Config,
    inputs: list[dict[str, Any]],
    counts: dict[str, int],
    stage: Stages,
    started: datetime,
    pii_key: str | None,
) -> dict[str, Any]:
    return {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.origin,
        "config_hash": config.digest(),
        "engine": stage.engine,  # where the run ended: an update runs on DuckDB
        # an update refuses a hashed output by it: it keeps no plain records to link
        "pii_hashed": config.output.hash_pii,
        # by which the next run tells whether its key is this one's (never the key itself)
        "pii_key_check": None if pii_key is None else output.pii_key_check(pii_key),
        # verify reports a state/ lost since (update --previous needs it)
        "update_state": config.output.state,
        # explain and report read the folder alone, so the decision rule travels with it.
        "matching": {"threshold": config.matching.threshold, "links_floor": output.LINKS_FLOOR},
        "inputs": inputs,
        "counts": {
            **counts,
            "balanced": counts["rows_in"] == counts["rows_mapped"] + counts["rows_rejected"],
        },
        "stages_seconds": dict(stage.timings),
        "stages_engine": dict(stage.engines),
        "versions": versions(),
    }


def _model_summary(model: MatchModel | score.LogisticModel, reused: bool) -> dict[str, Any]:
    """How the match model was obtained, with EM's convergence reported as it happened."""
    if isinstance(model, score.LogisticModel):
        return {
            "source": "--model file (logistic regression on labelled pairs)",
            "labelled_pairs": model.labelled_pairs,
            "intercept_weight": model.intercept_weight,
            "weights": model.comparisons,
        }
    return {
        "source": "--model file" if reused else "EM on candidate pair patterns",
        "prior": model.prior,
        "iterations": model.iterations,
        "converged": model.converged,
        "log_likelihood": model.log_likelihood,
        "warnings": list(getattr(model, "warnings", [])),
        "weights": model.weight_table(),
    }


def _comparisons(config: Config) -> tuple[ComparisonSpec, ...]:
    return tuple(COMPARISON_BY_NAME[n] for n in config.matching.comparisons)


def _prepare(engine: DuckDBEngine, config: Config, work_dir: Path) -> int:
    """Ingest, standardise and collapse into nodes (junk blanked); return the node count."""
    ingest.ingest(engine, config, work_dir)
    standardize.standardize(engine, config)
    nodes, _ = block.collapse_nodes(
        engine, config.matching.blocklist, config.matching.max_records_per_value
    )
    return nodes


# A rule producing more pairs than this many per node is likely a mistake (a key most records
# share); `plan` warns about it.
EXPLOSION_PAIRS_PER_NODE = 50


def plan(config: Config) -> dict[str, Any]:
    """Per blocking rule, the candidate pairs it would produce, without building any pair."""
    with scratch.folder("plan") as work:
        engine = DuckDBEngine(config.engine, temp_dir=work / "spill")
        try:
            nodes = _prepare(engine, config, work)
            rules = block.plan_rules(
                engine, config.matching.blocking, config.matching.max_block_size
            )
        finally:
            engine.close()
    for rule in rules:
        rule["explodes"] = int(rule["pairs"]) > EXPLOSION_PAIRS_PER_NODE * max(nodes, 1)
    return {
        "nodes": nodes,
        "max_block_size": config.matching.max_block_size,
        "rules": rules,
        "total_pairs_upper_bound": sum(int(r["pairs"]) for r in rules),
    }


def train(config: Config, labels: Path | None = None) -> MatchModel | score.LogisticModel:
    """Fit the match model `unify` would fit (EM), or a logistic regression on `labels`."""
    comparisons = _comparisons(config)
    label_rows = score.read_labels(labels) if labels is not None else None
    with scratch.folder("train") as work:
        engine = DuckDBEngine(config.engine, temp_dir=work / "spill")
        try:
            nodes = _prepare(engine, config, work)
            if label_rows is not None and labels is not None:
                return score.train_supervised(engine, comparisons, label_rows, labels)
            pairs = block.candidate_pairs(
                engine, config.matching.blocking, config.matching.max_block_size
            )
            if pairs == 0:
                # EM has nothing to learn from: the model would be its starting guess, saved
                # as if fitted ('0 iterations, NOT converged'). unify uses that guess for a
                # handful of records; a saved model is meant to be reused on real data.
                raise UserError(_nothing_to_train(engine, nodes))
            score.build_gammas(engine, comparisons, config.matching.rules)
            return score.train(
                engine,
                comparisons,
                config.matching.blocking,
                config.matching.seed,
                config.matching.max_iterations,
            )
        finally:
            engine.close()


def _nothing_to_train(engine: DuckDBEngine, nodes: int) -> str:
    """Why `train` has no record pairs to learn from: no rows, none readable, or no pair any
    blocking rule makes of the `nodes` distinct identities."""
    if nodes == 0:
        rejected = engine.count(ingest.REJECTS)
        if rejected:
            return (
                f"no record pairs to train on: every row of the exports was rejected "
                f"({_rows(rejected)}; `cxunify unify` writes them to rejects.parquet with why)"
            )
        return "no record pairs to train on: the exports hold no rows"
    return (
        "no record pairs to train on: no blocking rule makes a candidate pair of the exports' "
        f"{nodes:,} distinct {'identity' if nodes == 1 else 'identities'} (records alike in "
        "every identity field are one); train on more of the data"
    )
