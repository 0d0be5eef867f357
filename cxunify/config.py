"""Typed configuration, loaded from YAML, with errors that name the file and the dotted key.

Every problem in a config is reported at once, e.g.::

    configs/mine.yaml: sources[0].colums: unknown key; did you mean 'columns'?
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pycountry
import yaml
from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from cxunify.errors import ConfigError, public
from cxunify.fields import FIELD_NAMES, SEVERAL_COLUMN_FIELDS, Kind
from cxunify.printable import printable

Format = Literal["auto", "csv", "tsv", "ndjson", "json", "parquet", "excel"]

# Numeric settings are StrictInt or Number: pydantic's lax int and float read YAML's `true` as
# 1 and the text '2' as 2. A whole number is also a Number (`threshold: 1` is 1.0); a Number is
# finite, as `.inf` or `.nan` would make the scores it weighs NaN. True/false settings are
# StrictBool for the same reason: lax bool read 1, 'no' and 'off' as booleans.
Number = Annotated[float, Strict(), AllowInfNan(False)]


def _column_names(value: Any) -> Any:
    """A field's column, or its columns in the order their values are preferred
    (`phone: [Work phone, Mobile phone]`)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        # (as any text setting: "should be text, not 1234; put it in quotes ...")
        raise PydanticCustomError("string_type", "Input should be a valid string")
    if not value:
        raise PydanticCustomError(
            "column_list", "the list is empty; give a column, or a list of one or more"
        )
    for i, column in enumerate(value):
        if not isinstance(column, str):
            raise PydanticCustomError(
                "column_list",
                "item {position} of the list should be a column's name (text), not {given}",
                {"position": i + 1, "given": _given(column)},
            )
    repeated = sorted({c for c in value if value.count(c) > 1})
    if repeated:
        raise PydanticCustomError(
            "column_list",
            "lists {columns} twice; give each column once",
            {"columns": ", ".join(repr(c) for c in repeated)},
        )
    return value


# One column's name, or a list of them (for the fields of SEVERAL_COLUMN_FIELDS).
ColumnNames = Annotated[str | list[str], BeforeValidator(_column_names)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SourceConfig(_Strict):
    """One export: a file or a glob of files of the same shape."""

    name: str = Field(description="name used in outputs (identity_map.source)")
    kind: Kind = Field(description="crm | transactions | social | support")
    path: str = Field(
        description="file path or glob, relative to the config file; with engine spark also "
        "a URI on a store Spark reads (s3a://bucket/crm-*.csv)"
    )
    format: Format = Field("auto", description="auto picks by file extension")
    encoding: str = Field(
        "auto", description="auto: UTF-8, else cp1252/latin-1 (noted in run.json)"
    )
    delimiter: str | None = Field(None, description="CSV delimiter; sniffed when absent")
    quote: str = Field('"', description="CSV: the character that quotes a field")
    escape: str | None = Field(
        None,
        description='CSV: the character escaping a quote inside a quoted field (\\" with a '
        "backslash); absent: the quote itself, a quote inside doubled (RFC 4180)",
    )
    sheet: str | None = Field(
        None, description="Excel: the sheet to read; else the first with rows"
    )
    id: str | None = Field(None, description="column whose value identifies a row; else row number")
    columns: dict[str, ColumnNames] = Field(
        default_factory=dict,
        description="canonical field -> column name in the file; email and phone may take a "
        "list of columns, the first holding a value used to match",
    )
    phone_region: str | None = Field(None, description="default phone region for this source")
    dayfirst: StrictBool | None = Field(
        None, description="true: 03/04/2020 is 3 April; false: March 4"
    )
    decimal_comma: StrictBool | None = Field(
        None,
        description="true: the source writes a decimal comma (12,50), so 1.234 is 1234; "
        "false or absent: 1.234 is 1.234",
    )

    @field_validator("name")
    @classmethod
    def _name_is_plain(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must not be empty")
        return name

    @field_validator("path")
    @classmethod
    def _a_path(cls, path: str) -> str:
        # An empty path resolved to the config's folder: "file not found: <folder>".
        if not path.strip():
            raise ValueError("is empty; give the export's file or glob")
        return path

    @property
    def order_lines(self) -> str | None:
        """The order_id column naming this source's records with their place in their order
        (``#1001/2``): a transactions source without an id column whose rows carry an
        order_id, as an export of one row per line item (Shopify's orders) has no column
        naming a row, and its rows' numbers name other records in each night's file."""
        if self.kind is not Kind.transactions or self.id is not None:
            return None
        mapped = self.columns.get("order_id")
        return mapped if isinstance(mapped, str) else None

    def columns_of(self, field: str) -> tuple[str, ...]:
        """The columns mapped to `field`, in the order their values are preferred.

        >>> SourceConfig(name="crm", kind="crm", path="crm.csv",
        ...              columns={"phone": ["Work phone", "Mobile phone"]}).columns_of("phone")
        ('Work phone', 'Mobile phone')
        """
        mapped = self.columns.get(field)
        if mapped is None:
            return ()
        return (mapped,) if isinstance(mapped, str) else tuple(mapped)

    def mapped_columns(self) -> tuple[str, ...]:
        """Every column the mapping reads, each once, in the mapping's order."""
        return tuple(dict.fromkeys(c for f in self.columns for c in self.columns_of(f)))

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, columns: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        problems = []
        for field in columns:
            if field not in FIELD_NAMES:
                problems.append(
                    f"'{field}' is not a canonical field{_did_you_mean(field, FIELD_NAMES)}"
                )
        if problems:
            raise ValueError("; ".join(problems))
        return columns

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, delimiter: str | None) -> str | None:
        if delimiter is not None and len(delimiter) != 1:
            raise ValueError("must be a single character")
        return _not_a_line_break(delimiter)

    @field_validator("quote", "escape")
    @classmethod
    def _one_ascii_char(cls, char: str | None) -> str | None:
        # DuckDB's reader takes a single byte for both.
        if char is not None and (len(char) != 1 or not char.isascii()):
            raise ValueError("must be a single ASCII character")
        return _not_a_line_break(char)

    @field_validator("phone_region")
    @classmethod
    def _region_code(cls, region: str | None) -> str | None:
        return phone_region_code(region)

    @model_validator(mode="after")
    def _lists_where_fields_take_them(self) -> SourceConfig:
        # A list for a name or a street would piece a record together from two columns that
        # may hold two people's or two places' parts.
        several = " and ".join(SEVERAL_COLUMN_FIELDS)
        problems = [
            (
                ("columns", field),
                f"takes one column, not a list (only {several} take several)",
            )
            for field, mapped in self.columns.items()
            if isinstance(mapped, list) and field not in SEVERAL_COLUMN_FIELDS
        ]
        if problems:
            raise _problems_at(type(self), problems)
        return self

    @model_validator(mode="after")
    def _quote_is_not_the_delimiter(self) -> SourceConfig:
        if self.delimiter is not None and self.delimiter == self.quote:
            raise ValueError(f"quote and delimiter are both '{self.quote}'")
        return self


def _not_a_line_break(char: str | None) -> str | None:
    # A line break ends a CSV record: as a delimiter or quote it made the header one column
    # and every mapped column "not found".
    if char in ("\n", "\r"):
        raise ValueError("must not be a line break")
    return char


def phone_region_code(region: str | None) -> str | None:
    """A phone region as phonenumbers knows it (ISO 3166 alpha-2, upper case)."""
    import phonenumbers

    if region is None:
        return None
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"'{region}' is not a phone region (ISO 3166 alpha-2, e.g. US, GB)")
    return region


class StandardizeConfig(_Strict):
    phone_region: str | None = Field("US", description="region for numbers without +country code")
    dayfirst: StrictBool = Field(False, description="read ambiguous dates as day/month/year")
    decimal_comma: StrictBool = Field(
        False, description="read amounts such as 1.234 as 1234 (a decimal comma: 12,50)"
    )

    @field_validator("phone_region")
    @classmethod
    def _region_code(cls, region: str | None) -> str | None:
        return phone_region_code(region)


class GuardConfig(_Strict):
    max_emails: StrictInt = Field(
        5, ge=1, le=10_000, description="most distinct emails one customer may have"
    )
    dob: StrictBool = Field(True, description="one date of birth per customer (typos allowed)")
    first_name: StrictBool = Field(
        True, description="one first name per customer (nicknames allowed)"
    )
    suffix: StrictBool = Field(True, description="Jr and Sr are different people")
    national_id: StrictBool = Field(
        True, description="one national id per customer (typos allowed)"
    )


# A block of n identities makes n(n-1)/2 pairs: 100,000 make 5 billion, more than a machine
# compares in a night; far larger, DuckDB could not bind the limit (an internal error).
MAX_BLOCK_SIZE = 100_000


class BlockingRule(_Strict):
    """Candidate pairs share every key; with `one_side`, only pairs where at least one of the
    two records has that property (``no_surname``: a surname missing or only an initial)."""

    keys: list[str] = Field(description="derived keys both records must share")
    one_side: Literal["no_surname", "no_first_name"] | None = Field(
        None, description="pair only records where at least one side has this property"
    )
    max_block_size: StrictInt | None = Field(
        None,
        ge=2,
        le=MAX_BLOCK_SIZE,
        description="this rule's own block-size limit (at most matching's)",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        # The plain form, and the usual one: a list of keys.
        return {"keys": value} if isinstance(value, list | tuple) else value

    @field_validator("keys")
    @classmethod
    def _known_keys(cls, keys: list[str]) -> list[str]:
        return _check_keys(keys)


def _check_keys(keys: list[str]) -> list[str]:
    from cxunify.block import BLOCKING_KEYS

    if not keys:
        raise ValueError("a rule needs at least one key")
    listed = ", ".join(BLOCKING_KEYS)
    problems = [
        f"'{key}' is not a key{_did_you_mean(key, BLOCKING_KEYS)} (keys: {listed})"
        for key in keys
        if key not in BLOCKING_KEYS
    ]
    if problems:
        raise ValueError("; ".join(problems))
    return keys


# EM settles within tens of iterations (9 on sample_data; each of them ~1 ms per 5,000
# distinct comparison patterns). A fit still moving after 10,000 will not settle: a huge limit
# only let such a fit run for hours, each iteration a line of the model's history (model.json).
MAX_EM_ITERATIONS = 10_000
# A value on more records than this is junk in any data; far larger, DuckDB could not bind the
# limit at all (above 2**127: an internal error).
MAX_RECORDS_PER_VALUE = 1_000_000_000


class MatchingConfig(_Strict):
    blocking: list[BlockingRule] = Field(
        default_factory=lambda: [
            BlockingRule(keys=list(r.keys), one_side=r.one_side, max_block_size=r.max_block_size)
            for r in _default_rules()
        ],
        description="candidate pairs share every key of at least one rule",
        max_length=63,  # which rules found a pair is a bit mask in a BIGINT
    )
    max_block_size: StrictInt = Field(
        1000,
        ge=2,
        le=MAX_BLOCK_SIZE,
        description="a key value shared by more nodes than this blocks nothing",
    )
    comparisons: list[str] = Field(
        default_factory=lambda: list(_comparison_names()),
        description="fields compared for each candidate pair",
    )
    threshold: Number = Field(
        0.9, gt=0, lt=1, description="match probability at or above which a pair is linked"
    )
    rules: list[list[str]] = Field(
        default_factory=list,
        description="deterministic rules: equal (and present) on all these keys means a match",
    )
    blocklist: list[str] = Field(
        default_factory=list,
        description="values that never link anyone (a shop's own phone, a shared inbox)",
    )
    max_records_per_value: StrictInt = Field(
        1000,
        ge=2,
        description="an email/phone on more records than this is treated as junk "
        f"(at most {MAX_RECORDS_PER_VALUE})",
    )
    guards: GuardConfig = Field(default_factory=GuardConfig)
    max_iterations: StrictInt = Field(
        100, ge=1, description=f"EM iterations at most (1 to {MAX_EM_ITERATIONS})"
    )
    seed: StrictInt = Field(42, description="seed of the random pairs that estimate u")

    @field_validator("max_iterations")
    @classmethod
    def _iterations_that_end(cls, iterations: int) -> int:
        if iterations > MAX_EM_ITERATIONS:
            raise ValueError(
                f"give at most {MAX_EM_ITERATIONS} (EM settles within tens of iterations; "
                "each one costs time and a line of the model's history)"
            )
        return iterations

    @field_validator("max_records_per_value")
    @classmethod
    def _a_record_count(cls, records: int) -> int:
        if records > MAX_RECORDS_PER_VALUE:
            raise ValueError(
                f"give at most {MAX_RECORDS_PER_VALUE} (a value on more records than that is "
                "junk in any data)"
            )
        return records

    @field_validator("blocking")
    @classmethod
    def _some_rule(cls, rules: list[BlockingRule]) -> list[BlockingRule]:
        # Deterministic rules too only judge the pairs blocking makes: without a rule, no two
        # records are compared and the run links nothing.
        if not rules:
            raise ValueError(
                "no rule: no two records would be compared, and each would be a customer of "
                "its own; give at least one rule, or leave blocking out for the default rules"
            )
        return rules

    @model_validator(mode="after")
    def _rule_limits_within_the_limit(self) -> MatchingConfig:
        # block.py takes the smaller of the two limits: a larger one would be ignored unseen.
        # The default rules' limits are not the user's to fix (a limit of 20 takes them down).
        if "blocking" not in self.model_fields_set:
            return self
        too_large = [
            (
                ("blocking", i, "max_block_size"),
                f"{rule.max_block_size} is above matching.max_block_size "
                f"({self.max_block_size}), which limits every rule; give at most "
                f"{self.max_block_size}, or raise matching.max_block_size",
            )
            for i, rule in enumerate(self.blocking)
            if rule.max_block_size is not None and rule.max_block_size > self.max_block_size
        ]
        if too_large:
            raise _problems_at(type(self), too_large)
        return self

    @field_validator("rules")
    @classmethod
    def _known_keys(cls, rules: list[list[str]]) -> list[list[str]]:
        problems = []
        for i, rule in enumerate(rules):
            try:
                _check_keys(rule)
            except ValueError as exc:
                problems.append(f"rule {i}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return rules

    @field_validator("comparisons")
    @classmethod
    def _known_comparisons(cls, names: list[str]) -> list[str]:
        known = _comparison_names()
        problems = [
            f"'{n}' is not a comparison{_did_you_mean(n, known)}" for n in names if n not in known
        ]
        if problems:
            raise ValueError("; ".join(problems))
        if not names:
            raise ValueError("at least one comparison is needed")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            # The model holds one m and u per comparison: a repeat would count one field twice.
            raise ValueError(f"{', '.join(repr(n) for n in repeated)} is listed twice")
        return names


def _default_rules() -> tuple[Any, ...]:
    from cxunify.block import DEFAULT_RULES

    return DEFAULT_RULES


def _comparison_names() -> tuple[str, ...]:
    from cxunify.compare import COMPARISONS

    return tuple(c.name for c in COMPARISONS)


class OutputConfig(_Strict):
    compression: Literal["zstd", "snappy", "gzip", "uncompressed"] = "zstd"
    state: StrictBool = Field(
        True,
        description="write state/ (what `cxunify update` reads); false saves its seconds and "
        "disk on runs that are never updated",
    )
    hash_pii: StrictBool = Field(
        False,
        description="replace names, emails, phones, streets, birth dates, national ids, handles "
        "and rejected lines in the outputs by keyed SHA-256 digests (key: CXUNIFY_PII_KEY)",
    )

    @model_validator(mode="before")
    @classmethod
    def _no_state_with_hashed_pii(cls, data: Any) -> Any:
        """state/ keeps the standardised values an update compares: not with hashed outputs."""
        if isinstance(data, dict) and data.get("hash_pii") is True:
            if data.get("state") is True:
                raise ValueError(
                    "hash_pii: state/ would keep the raw values an update compares; "
                    "set state: false (hashed outputs are replaced by full runs, not updated)"
                )
            data = {**data, "state": False}
        return data


class GatesConfig(_Strict):
    """Quality gates checked before a run replaces the previous output (unset = not checked).
    Strict types, as every numeric setting: YAML's `true` is not a limit of 1."""

    max_cluster_size: StrictInt | None = Field(
        None, ge=1, description="most records one customer may have"
    )
    max_id_changed_share: Number | None = Field(
        None, ge=0, le=1, description="largest share of previous customers whose id may change"
    )
    max_reject_rate: Number | None = Field(
        None, ge=0, le=1, description="largest share of input rows that may be rejected"
    )
    min_linked_share: Number | None = Field(
        None, ge=0, le=1, description="smallest share of records linked to another record"
    )
    max_customers_merged: StrictInt | None = Field(
        None, ge=0, description="most previous customers that may be merged into others"
    )
    max_customers_removed_share: Number | None = Field(
        None,
        ge=0,
        le=1,
        description="largest share of previous customers that may vanish: none of their "
        "records is in this run (a truncated export, ids renumbered at the source)",
    )


# DuckDB starts every thread it is given at once: 100,000 hung the run. A fixed limit,
# not one relative to this machine's cores, so that a config valid where it is written is
# valid where it runs; 1024 is above the hardware threads of any one server.
MAX_THREADS = 1024


def threads_problem(threads: int) -> str | None:
    """Why DuckDB should not run on `threads` threads, else None."""
    if threads < 1:
        return "give at least 1 thread"
    if threads > MAX_THREADS:
        return f"give at most {MAX_THREADS} threads (DuckDB starts them all at once)"
    return None


class EngineConfig(_Strict):
    name: Literal["duckdb", "spark"] = "duckdb"
    threads: StrictInt | None = Field(
        None, description=f"1 to {MAX_THREADS}; default: CXUNIFY_THREADS or all cores"
    )
    memory_limit: str | None = Field(
        None, description="e.g. '8GB'; default: CXUNIFY_MEMORY_LIMIT, else 2GB"
    )

    @field_validator("threads")
    @classmethod
    def _a_thread_count(cls, threads: int | None) -> int | None:
        problem = threads is not None and threads_problem(threads)
        if problem:
            raise ValueError(problem)
        return threads

    @field_validator("memory_limit")
    @classmethod
    def _a_size(cls, size: str | None) -> str | None:
        problem = size and memory_limit_problem(size)
        if problem:
            raise ValueError(problem)
        return size

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        # `engine: spark` is short for `engine: {name: spark}`.
        return {"name": value} if isinstance(value, str) else value


def memory_limit_problem(size: str) -> str | None:
    """Why DuckDB would not run within `size` as its memory limit, else None. Asked of DuckDB
    itself (it reads `8GB`, `8 GiB`, `80%`), on a connection of its own."""
    import duckdb

    if size.strip().startswith("-"):
        # DuckDB takes a negative size for no limit at all: the opposite of what was asked.
        return f"'{size}' is negative; give a size like '8GB'"
    con = duckdb.connect(":memory:")
    try:
        con.execute("SET memory_limit = $size", {"size": size})
    except duckdb.Error:
        return f"'{size}' is not a size like '8GB'"
    finally:
        con.close()
    return None


SurvivorshipRuleName = Literal[
    "most_recent", "most_frequent", "source_priority", "longest", "first_non_null"
]
GOLDEN_FIELD_NAMES = (
    "first_name", "last_name", "email", "phone", "street", "city", "postcode", "state", "country",
    "dob",
)  # fmt: skip
DEFAULT_SOURCE_PRIORITY = ("crm", "support", "transactions", "social")


class SurvivorshipRule(_Strict):
    """How one golden field picks its value among a customer's records."""

    rule: SurvivorshipRuleName = Field(description="how the winning value is chosen")
    sources: list[str] = Field(
        default_factory=lambda: list(DEFAULT_SOURCE_PRIORITY),
        description="source_priority: source names or kinds, most trusted first",
    )


def _default_survivorship() -> dict[str, SurvivorshipRule]:
    # Names, email and birth date are typed by the customer into the CRM; addresses and phones
    # change when people move, so the newest wins.
    recent = ("phone", "street", "city", "postcode", "state", "country")
    return {
        name: SurvivorshipRule(rule="most_recent" if name in recent else "source_priority")
        for name in GOLDEN_FIELD_NAMES
    }


# The currency of an amount whose currency cannot be told: ISO 4217's code for "no currency".
UNKNOWN_CURRENCY = "XXX"


@functools.cache
def currency_codes() -> list[str]:
    """ISO 4217's codes (pycountry's list), but XXX, its code for "no currency"."""
    return sorted(c.alpha_3 for c in pycountry.currencies if c.alpha_3 != UNKNOWN_CURRENCY)


def currency_problem(code: str) -> str | None:
    """Why `code` is no currency an amount can be in, else None."""
    if code.upper() in currency_codes():
        return None
    return f"'{code}' is not an ISO 4217 currency code"


class CurrencyConfig(_Strict):
    base: str | None = Field(None, description="convert every amount into this currency")
    rates: dict[str, Number] = Field(
        default_factory=dict, description="currency -> units of base per unit (base needs these)"
    )

    @field_validator("base")
    @classmethod
    def _code(cls, base: str | None) -> str | None:
        problem = base is not None and currency_problem(base)
        if problem:
            raise ValueError(problem)
        return base and base.upper()

    @field_validator("rates")
    @classmethod
    def _positive(cls, rates: dict[str, float]) -> dict[str, float]:
        problems = [
            f"{code}: rate must be positive" if rate <= 0 else str(currency_problem(code))
            for code, rate in rates.items()
            if rate <= 0 or currency_problem(code)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return {code.upper(): rate for code, rate in rates.items()}


class LifecycleConfig(_Strict):
    new_days: StrictInt = Field(
        90, ge=1, description="first order at most this many days before as_of"
    )
    active_days: StrictInt = Field(180, ge=1, description="last order at most this many days ago")
    lapsed_days: StrictInt = Field(
        365, ge=1, description="beyond this since the last order: lapsed"
    )

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleConfig:
        if self.active_days > self.lapsed_days:
            raise ValueError("active_days must not exceed lapsed_days")
        return self


class JourneyConfig(_Strict):
    loyalty_orders: StrictInt = Field(2, ge=2, description="orders that make a returning customer")
    comparison_touchpoints: StrictInt = Field(
        2, ge=1, description="touchpoints without an order that show a prospect comparing"
    )


class ExperienceConfig(_Strict):
    csat_scale: tuple[Number, Number] = Field(
        (1, 5),
        description="lowest and highest CSAT rating; a value outside is no rating (counted)",
    )

    @field_validator("csat_scale")
    @classmethod
    def _a_range(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if not scale[0] < scale[1]:
            raise ValueError("the lowest rating must be below the highest, as in [1, 5]")
        return scale

    csat_weight: Number = Field(0.5, ge=0)
    sentiment_weight: Number = Field(0.3, ge=0)
    resolution_weight: Number = Field(0.2, ge=0)
    resolution_target_hours: Number = Field(
        24, gt=0, description="a median resolution this long scores half"
    )


def parse_as_of(value: object) -> datetime | None:
    """A date traits are relative to: ISO 8601 (``2025-06-30``, ``2025-06-30T18:00:00``,
    with or without an offset) or compact (``20250630``). A bare number is refused rather
    than read as seconds since 1970, which turned ``20250630`` into 1970-08-23. With an offset,
    the time in UTC without one, as every time of the records is: bound as it was, DuckDB took
    ``18:00+02:00`` to the machine's wall time (12:00 in New York), so recency and lifecycle
    depended on where the run ran."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    text = str(value).strip()
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    if re.match(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return parse_as_of(datetime.fromisoformat(text))
        except ValueError:
            pass
    raise ValueError(f"'{value}' is not a date; write it as 2025-06-30 or 2025-06-30T18:00:00")


class ProfileConfig(_Strict):
    as_of: datetime | None = Field(
        None, description="the date traits are relative to; default: newest timestamp in the data"
    )

    @field_validator("as_of", mode="before")
    @classmethod
    def _a_date(cls, value: object) -> datetime | None:
        return parse_as_of(value)

    survivorship: dict[str, SurvivorshipRule] = Field(
        default_factory=_default_survivorship, description="golden field -> rule"
    )
    currency: CurrencyConfig = Field(default_factory=CurrencyConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    journey: JourneyConfig = Field(default_factory=JourneyConfig)
    experience: ExperienceConfig = Field(default_factory=ExperienceConfig)
    top_categories: StrictInt = Field(3, ge=1, description="categories listed in top_categories")

    @field_validator("survivorship")
    @classmethod
    def _known_fields(cls, rules: dict[str, SurvivorshipRule]) -> dict[str, SurvivorshipRule]:
        problems = [
            f"'{name}' is not a golden field{_did_you_mean(name, GOLDEN_FIELD_NAMES)}"
            for name in rules
            if name not in GOLDEN_FIELD_NAMES
        ]
        if problems:
            raise ValueError("; ".join(problems))
        # A config names only the fields it changes; the others keep their default rule.
        return {**_default_survivorship(), **rules}


def _spark_setting(value: Any) -> Any:
    """A spark.* setting as the text Spark reads: users write `spark.executor.cores: 4` and
    `spark.ui.enabled: false`, which Spark takes as '4' and 'false'."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise PydanticCustomError(
                "spark_setting", "should be a finite number, not {given}", {"given": str(value)}
            )
        return str(value)
    if not isinstance(value, str):
        raise PydanticCustomError(
            "spark_setting",
            "should be text, a number or true/false, not {given}",
            {"given": _given(value)},
        )
    return value


SparkSetting = Annotated[str, BeforeValidator(_spark_setting)]


class SparkConfig(_Strict):
    """Settings for the SparkSession cxunify creates (ignored when one is handed in)."""

    master: str | None = Field(None, description="e.g. local[4], yarn; default: spark-submit's")
    app_name: str = "cxunify"
    conf: dict[str, SparkSetting] = Field(
        default_factory=dict,
        description="extra spark.* settings; numbers and true/false are passed as text",
    )
    work_dir: str | None = Field(
        None, description="where intermediate tables are written; default: beside the output"
    )


class Config(_Strict):
    sources: list[SourceConfig] = Field(min_length=1)
    standardize: StandardizeConfig = Field(default_factory=StandardizeConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)
    profile: ProfileConfig = Field(default_factory=ProfileConfig)
    gates: GatesConfig = Field(default_factory=GatesConfig)
    spark: SparkConfig = Field(default_factory=SparkConfig)
    # Where relative source paths are resolved from: the config file's folder.
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)
    origin: str = Field("<flags>", exclude=True)

    def with_engine(self, name: str) -> Config:
        """This config run on engine `name` (what ``--engine`` does)."""
        if name not in ("duckdb", "spark"):
            raise ConfigError([f"--engine: '{name}' is not an engine; use duckdb or spark"])
        engine = self.engine.model_copy(update={"name": name})
        return self.model_copy(update={"engine": engine})

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"source name '{source.name}' is used twice")
            seen.add(source.name)
        return self

    def check_survivorship(self, other_sources: tuple[str, ...] = ()) -> None:
        """Survivorship's source lists name sources of the run (`other_sources`: those an
        update's previous runs read, which its config may leave out) or kinds: a misspelt
        name would rank nothing."""
        known = [*(s.name for s in self.sources), *other_sources, *(k.value for k in Kind)]
        for field_name, rule in self.profile.survivorship.items():
            for name in rule.sources:
                if name not in known:
                    raise ConfigError(
                        [
                            f"{self.origin}: profile.survivorship.{field_name}.sources: "
                            f"'{printable(name)}' is neither a source nor a kind"
                            f"{_did_you_mean(name, known)}"
                        ]
                    )

    def digest(self) -> str:
        """A hash of everything that changes results (not where the config lives)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_yaml_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=True)


def _problems_at(
    model: type[BaseModel], problems: Sequence[tuple[tuple[str | int, ...], str]]
) -> ValidationError:
    """An error for each (key under `model`, problem): a check across keys names the key at
    fault, where a ValueError would name the section holding them both."""
    return ValidationError.from_exception_data(
        model.__name__,
        [
            InitErrorDetails(
                type=PydanticCustomError("value_error", "{problem}", {"problem": problem}),
                loc=loc,
                input=None,
            )
            for loc, problem in problems
        ],
    )


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:  # a key as written, its control characters escaped (a line break as \n)
            out += ("." if out else "") + printable(str(part))
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that owns the key at `loc` (used to suggest valid keys)."""
    model: Any = Config
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if model is None:
            return None
    return model


def _describe(error: Any) -> str:
    loc = tuple(error["loc"])
    key = _dotted(loc)
    if error["type"] == "extra_forbidden":
        owner = _model_at(loc)
        valid = [k for k, f in owner.model_fields.items() if not f.exclude] if owner else []
        return f"{key}: unknown key{_did_you_mean(str(loc[-1]), valid)}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "model_type":
        # Pydantic names its class ("a valid dictionary or instance of GatesConfig").
        got = error["input"]
        kinds = {str: "text", int: "number", float: "number", bool: "true/false", list: "list"}
        what = "nothing (null)" if got is None else f"a {kinds.get(type(got), type(got).__name__)}"
        if len(loc) > 1 and loc[-2] == "blocking":
            return (
                f"{key}: a rule is a list of keys ([email_std]) or a mapping (keys: ...), "
                f"not {what}"
            )
        return f"{key}: should be a mapping of keys, not {what}"
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    if error["type"] in ("literal_error", "enum") and isinstance(error["input"], str):
        # A misspelt choice (rule: most_recnt) gets a suggestion, as a misspelt key does.
        choices = re.findall(r"'([^']*)'", error["ctx"]["expected"])
        return f"{key}: {message}{_did_you_mean(error['input'], choices)}"
    if error["type"] in _TYPE_ERRORS:
        # Pydantic's "Input should be a valid integer" did not say what was wrong with '2'.
        got = error["input"]
        # YAML 1.1 read `state: no` as false, and a config may have been written for it.
        said = _YAML_11_BOOLEANS.get(got.lower()) if isinstance(got, str) else None
        hint = "" if error["type"] != "bool_type" or said is None else f"; write {said}"
        return f"{key}: should be {_TYPE_ERRORS[error['type']]}, not {_given(got)}{hint}"
    if error["type"] == "string_type":
        got = error["input"]
        # YAML reads an unquoted NO (Norway) as false and +15550000000 as a number.
        hint = (
            "; put it in quotes, or YAML reads it as true/false"
            if isinstance(got, bool)
            else "; put it in quotes, or YAML reads it as a number"
            if isinstance(got, int | float)
            else ""
        )
        return f"{key}: should be text, not {_given(got)}{hint}"
    return f"{key}: {message}" if key else message


# The words YAML 1.1 took for true and false, which YAML 1.2 (as a config is read) takes as text.
_YAML_11_BOOLEANS = {
    "yes": "true",
    "y": "true",
    "on": "true",
    "no": "false",
    "n": "false",
    "off": "false",
}

_TYPE_ERRORS = {
    "int_type": "a whole number",
    "float_type": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
}


def _given(value: Any) -> str:
    """A value as YAML wrote it, for "should be ..., not ..."."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"text ('{printable(value)}')"
    if isinstance(value, int | float):
        return str(value)
    return "a list" if isinstance(value, list) else "a mapping"


def validate_config(raw: Any, *, origin: str, base_dir: Path) -> Config:
    """Build a Config from parsed YAML, reporting every problem with `origin` and dotted key."""
    if not isinstance(raw, dict):
        raise ConfigError([f"{origin}: the config must be a mapping with a 'sources' list"])
    # base_dir and origin are where the config lives, set here: written in the file they
    # were overwritten without a word, so they are unknown keys like any other.
    problems = [f"{origin}: {key}: unknown key" for key in raw if key in ("base_dir", "origin")]
    try:
        config = Config.model_validate({**raw, "base_dir": base_dir, "origin": origin})
    except ValidationError as exc:
        problems += [f"{origin}: {_describe(e)}" for e in exc.errors()]
    else:
        if origin != "<flags>":  # inferred from flags, the file is named (config_from_flags)
            problems += [f"{origin}: {problem}" for problem in _unmapped_sources(config)]
    if problems:
        # Each one line whatever the file holds: a key or value with a line break or an
        # escape in it (a hand-written config) passed them on to stderr.
        raise ConfigError([printable(problem) for problem in problems])
    return config


def _unmapped_sources(config: Config) -> list[str]:
    """A source mapping no column has no field to link its rows by: each row would be a
    customer with nothing but its id."""
    return [
        f"sources[{i}].columns: no column is mapped, so each row would be a customer with "
        "nothing but its id; map the file's columns to fields (email: e_mail)"
        for i, source in enumerate(config.sources)
        if not source.columns
    ]


class _ConfigLoader(yaml.SafeLoader):
    """YAML as PyYAML's safe loader reads it, except that booleans and numbers are YAML 1.2's
    (its core schema: only true and false are booleans, see below), a key repeated in a
    mapping is an error (PyYAML keeps the last: `threshold` set twice, the first silently
    lost) and a date-like value that is no date (`2025-13-01`) names its line instead of
    escaping as a bare ValueError."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base`: merged below, the keys given beside it winning
                key = self.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool):
                    continue
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"key '{key}' is repeated (first at line {seen[key]}); keep one of them",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)  # type: ignore[arg-type]

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        try:
            return super().construct_yaml_timestamp(node)  # type: ignore[arg-type]
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"'{node.value}' is not a date ({exc})", node.start_mark
            ) from None


_ConfigLoader.add_constructor("tag:yaml.org,2002:timestamp", _ConfigLoader.construct_yaml_timestamp)

# PyYAML reads YAML 1.1, where yes, no, on and off are booleans: `phone_region: NO` (Norway)
# was false, a column named `on` or `no` the key True or False, `state: no` of an address
# false. YAML 1.2's core schema reads them as text, and numbers as written (010 is 10, not
# octal 8; 1:30 is text, not 90). Its resolvers replace PyYAML's for booleans and numbers.
_BOOL, _INT, _FLOAT = (f"tag:yaml.org,2002:{t}" for t in ("bool", "int", "float"))
_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_ConfigLoader.add_implicit_resolver(
    _INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_ConfigLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


def _construct_yaml_int(loader: _ConfigLoader, node: yaml.Node) -> int:
    """An integer of YAML 1.2: decimal (a leading zero is no octal), 0o octal or 0x hex."""
    value = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    base = {"0o": 8, "0x": 16}.get(value[:2], 10)
    try:
        return int(value if base == 10 else value[2:], base)
    except ValueError:  # (a value tagged !!int by hand)
        raise yaml.constructor.ConstructorError(
            None, None, f"'{value}' is not a whole number", node.start_mark
        ) from None


_ConfigLoader.add_constructor(_INT, _construct_yaml_int)


@public("path")
def load_config(path: Path) -> Config:
    """Read and validate a YAML config; relative source paths resolve from its folder."""
    if path.is_dir():
        raise ConfigError([f"{path}: is a folder, not a config file"])
    if not path.is_file():
        raise ConfigError([f"{path}: config file not found"])
    data = path.read_bytes()
    try:
        raw = yaml.load(data.decode("utf-8"), Loader=_ConfigLoader)  # a SafeLoader
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{path}:{line}: config is not UTF-8 text; save it as UTF-8"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{path}{where}: invalid YAML: {problem}"]) from None
    return validate_config(raw, origin=str(path), base_dir=path.resolve().parent)
