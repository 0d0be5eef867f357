"""Zero-config: infer a source's column mapping and id column from its header and values.

A header is recognised through the spellings in `cxunify.fields`, then the values must agree
(an ``email`` column must mostly hold email addresses). Columns with unknown headers are
mapped by their values when those are unmistakable (email addresses).
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers

from cxunify.config import (
    Config,
    SourceConfig,
    StandardizeConfig,
    phone_region_code,
    validate_config,
)
from cxunify.engine import DuckDBEngine
from cxunify.engine.hadoop import is_uri
from cxunify.errors import InputError, UserError
from cxunify.fields import (
    FIELD_BY_NAME,
    GUARDED_HEADERS,
    Kind,
    fields_for_headers,
    holds_several,
    looks_like_record_key,
    normalise_header,
)
from cxunify.ingest import (
    BINARY_FORMATS,
    RawFile,
    create_tables,
    extension,
    extension_format,
    few_repeated_orders,
    file_format,
    folder_hint,
    load_raw,
    misspelt_columns,
    readable_text,
    repeated_copies,
)
from cxunify.sql import ident, table
from cxunify.standardize import RATING_PLACEHOLDERS, addresses, install_macros

SAMPLE_ROWS = 100_000

# Share of non-empty values that must look right for a header-based mapping to stand.
_MIN_SHARE = {
    "email": 0.5,
    "phone": 0.5,
    "emails": 0.5,
    "phones": 0.5,
    "date": 0.6,
    "timestamp": 0.6,
    "number": 0.8,
    "count": 0.8,
    "rating": 0.8,
    "handle": 0.8,
    "country_code": 0.8,
    "name": 0.6,
    "text": 0.0,
}

_EMAIL = r"regexp_full_match(lower(v), '[^@\s]+@[^@\s]+\.[a-z]{2,}')"
_PHONE = (
    r"length(regexp_replace(v, '[^0-9]', '', 'g')) BETWEEN 6 AND 17 "
    r"AND NOT regexp_matches(v, '[A-Za-z]{2,}|@')"
)


def _each_value(check: str) -> str:
    """`check` of every value of a cell holding several, split as ingest splits them."""
    pieces = r"list_filter(string_split_regex(v, '\s*[;,]\s*'), lambda v: v <> '')"
    return f"coalesce(list_bool_and(list_transform({pieces}, lambda v: {check})), false)"


_CHECKS = {
    "email": _EMAIL,
    "phone": _PHONE,
    # a column of several in a cell (see fields.holds_several)
    "emails": _each_value(_EMAIL),
    "phones": _each_value(_PHONE),
    "date": "cx_parse_date(v, false) IS NOT NULL OR cx_parse_date(v, true) IS NOT NULL",
    "timestamp": "cx_parse_timestamp(v, false) IS NOT NULL "
    "OR cx_parse_timestamp(v, true) IS NOT NULL",
    "number": "cx_amount(v) IS NOT NULL",
    "count": "cx_count(v) IS NOT NULL",  # 1,234 or 1.2K
    # a number, a survey's word (good, neutral, bad), or what a rating column holds where no
    # rating was given (a survey offered and not answered, n/a)
    "rating": f"cx_rating(v) IS NOT NULL "
    f"OR regexp_full_match(lower(trim(v)), '{RATING_PLACEHOLDERS}')",
    "name": r"regexp_matches(v, '\pL') AND NOT regexp_matches(v, '@|\d{3,}')",
    "handle": r"NOT regexp_matches(v, '\s')",
    # a country as two letters (Mailchimp's CC: US, DE), not a carbon copy's addresses
    "country_code": "regexp_full_match(v, '[A-Za-z]{2}')",
    # an order number as shops write it, after a hash (#1001, #SH-1001)
    "order_number": r"regexp_full_match(v, '#\s?[0-9A-Za-z-]*[0-9][0-9A-Za-z-]*')",
    # A numeric date only one way of reading can make: the day first (15/04/2025, or any
    # date written with dots, 03.04.2025: no locale writes the month first between dots),
    # or the month first (04/15/2025).
    "day_first": r"regexp_matches(v, '^(?:(?:1[3-9]|2\d|3[01])[/.-](?:0?[1-9]|1[0-2])[/.-]"
    r"|\d{1,2}\.(?:0?[1-9]|1[0-2])\.)(?:\d{2}|\d{4})(?:\D|$)')",
    "month_first": r"regexp_matches(v, '^(?:0?[1-9]|1[0-2])[/.-](?:1[3-9]|2\d|3[01])[/.-]"
    r"(?:\d{2}|\d{4})(?:\D|$)')",
    # An amount only a decimal comma makes (12,50, 3.500,00) or only a decimal point (12.50,
    # 1,234.50); 1.234 and 1,234 are either.
    "decimal_comma": r"regexp_matches(v, '(^|[^\d.,])\d+(\.\d{3})*,\d{1,2}($|[^\d.,])')",
    "decimal_point": r"regexp_matches(v, '(^|[^\d.,])\d+(,\d{3})*\.(\d{1,2}|\d{4,})"
    r"($|[^\d.,])')",
}


@dataclass
class InferredSource:
    source: SourceConfig
    notes: dict[str, str] = field(default_factory=dict)  # field -> why it was mapped
    id_note: str = ""
    skipped: dict[str, str] = field(default_factory=dict)  # column -> why it was not mapped
    # field -> why no column is mapped to it, when no header even suggested one: an orders
    # export's amount (the run's warning of a source mapping none sends the user here)
    missing: dict[str, str] = field(default_factory=dict)
    # How its dates are written, when its values tell (None: they do not), and why
    dayfirst: bool | None = None
    dayfirst_note: str = ""
    decimal_comma_note: str = ""
    # The region its numbers written without a country code are in, when its values tell
    # (None: they do not), and why; the region they lean to without telling, and why not
    phone_region: str | None = None
    phone_region_note: str = ""
    phone_region_leaning: str | None = None
    # Of its sample's phones (placeholders aside), those that are no number in the default
    # region, and all of them: a lone file of national numbers tells no region.
    phones_unread: tuple[int, int] | None = None


# `--transactions orders=exports/orders_2025-07-01.csv`: a source's name before the path.
_NAMED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<path>.+)")


def _named(given: str) -> tuple[str | None, str]:
    """A flag's source name (NAME=PATH) and its path or glob; a file whose name holds `=`
    is a path."""
    found = _NAMED.fullmatch(given)
    if found is None or Path(given).exists():
        return None, given
    return found["name"], found["path"]


def infer_sources(
    paths_by_kind: dict[Kind, list[str]],
    work_dir: Path,
    stored: dict[str, list] | None = None,
    infer_phone_regions: bool = True,
    for_draft: bool = True,
) -> list[InferredSource]:
    """One inferred source per file named by the flags (each may be a path or a glob), named
    by its file's stem; a flag given as NAME=PATH is one source of that name, whose files are
    all those PATH matches. A source `stored` holds (an update's previous output:
    name -> [kind, phone_region, dayfirst, id]) keeps its stored id column, phone_region and
    dayfirst when the file has it, instead of inferring them from tonight's rows. Each other
    source's phone region is inferred from its values unless not `infer_phone_regions` (a
    region the user gave is used). What only ``init``'s draft says (`phones_unread`) is left
    out unless `for_draft`: a run from flags makes no draft."""
    files: list[tuple[Kind, Path, str | None, str]] = []
    more_files: dict[int, list[Path]] = {}  # the other files of a NAME=glob source
    flag_of: dict[Path, str] = {}  # each file matched, and the flag that named it first
    for kind, flagged in paths_by_kind.items():
        for given in flagged:
            if not given.strip():  # read as the current folder: "--crm : file not found"
                raise InputError(f"--{kind.value}: the path is empty; give a file or a glob")
            name, pattern = _named(given)
            if is_uri(pattern):  # inferring needs the file here; a config names store paths
                raise InputError(
                    f"--{kind.value} {pattern}: flags read local files; for exports on a store "
                    f"write a config with `path: {pattern}` and `engine: spark` (`cxunify init` "
                    "on a local copy drafts one)"
                )
            # A file whose name holds a glob's characters ('crm [1].csv') is that file.
            globbed = glob.has_magic(pattern) and not Path(pattern).is_file()
            matches = (
                sorted(Path(p) for p in glob.glob(pattern, recursive=True))
                if globbed
                else [Path(pattern)]
            )
            matches = [m for m in matches if m.is_file()] if globbed else matches
            if not matches:
                raise InputError(f"--{kind.value} {given}: no file matches")
            for match in matches:
                if match.is_dir():
                    raise InputError(
                        f"--{kind.value} {given}: is a folder; {folder_hint(match, pattern)}"
                    )
                if not match.is_file():
                    raise InputError(f"--{kind.value} {given}: file not found")
                # Named twice (by two flags, or a flag and a glob), a file's rows would be
                # read as two sources' and counted twice.
                if match.resolve() in flag_of:
                    raise InputError(
                        f"--{kind.value} {given}: {match} is also named by "
                        f"{flag_of[match.resolve()]}; give each file once"
                    )
                flag_of[match.resolve()] = f"--{kind.value} {given}"
                if extension_format(match) is None:
                    # Before any file is read; a flag has no format: to set, as a config has,
                    # so the message says what the config's source writes (it ended at the
                    # colon, and left the user to guess the key and its values).
                    which = f"the format of {match}" if globbed else "its format"
                    raise InputError(
                        f"--{kind.value} {given}: cannot tell {which} from its extension "
                        f"({extension(match) or 'none'}); rename it (.csv, .tsv, .jsonl, .json, "
                        ".parquet, .xlsx), or read it with a config whose source sets its "
                        "format (format: csv, or tsv, ndjson, json, parquet, excel)"
                    )
            if name is not None:
                # one source of every file matched: its path is the glob, as in a config
                if any(name == n for _, _, n, _ in files):
                    raise InputError(f"--{kind.value} {given}: source name '{name}' given twice")
                path = str(Path(pattern).expanduser().absolute())
                files.append((kind, matches[0].resolve(), name, path))
                more_files[len(files) - 1] = [m.resolve() for m in matches[1:]]
                continue
            files += [(kind, m.resolve(), None, str(m.resolve())) for m in matches]
    if not files:
        raise InputError(
            "no input: give --config, or at least one of --crm/--transactions/--social/--support"
        )
    names = {name for _, _, name, _ in files if name is not None}
    engine = DuckDBEngine()
    try:
        install_macros(engine.con, values_only=True)
        create_tables(engine)
        samples = []
        for i, (kind, sample_file, name, path) in enumerate(files):
            name = name or _unique_name(sample_file, names)
            stored_as = (stored or {}).get(name)
            sample = _read_sample(engine, kind, sample_file, name, path, work_dir, i, stored_as)
            _sample_more(engine, sample, more_files.get(i, []), work_dir, i)
            samples.append(sample)
        all_shares = _value_shares(engine, [(s.table, s.raw.columns) for s in samples])
        inferred = []
        for sample, (shares, filled) in zip(samples, all_shares, strict=True):
            item = _infer_one(engine, sample, shares, filled, infer_phone_regions, for_draft)
            item.source.path = sample.path
            inferred.append(item)
        return inferred
    finally:
        engine.close()


def _sample_more(
    engine: DuckDBEngine, sample: _Sample, others: list[Path], work_dir: Path, i: int
) -> None:
    """Add the rows of the other files of a source's glob to its sample, up to SAMPLE_ROWS in
    all: an id unique in the first file (an order number, one row per order there) was taken
    for the source, and the second file's line items sharing one were rejected as repeats."""
    raw = sample.raw
    for j, other in enumerate(others):
        if raw.rows >= SAMPLE_ROWS:
            return
        if other.stat().st_size == 0:
            continue
        fmt = file_format(other, "auto")
        readable, _ = (
            (other, "binary") if fmt in BINARY_FORMATS else readable_text(other, "auto", work_dir)
        )
        more = table(f"infer_more_{i}_{j}")
        read = load_raw(
            engine, other, readable, fmt, None, more, sample.name,
            limit=SAMPLE_ROWS - raw.rows, work_dir=work_dir,
        )  # fmt: skip
        shared = [ident(c) for c in raw.columns if c in read.columns]
        if shared:
            engine.execute(
                f"INSERT INTO {sample.table} ({', '.join(shared)}) "
                f"SELECT {', '.join(shared)} FROM {more}"
            )
            raw.rows += read.rows
            raw.rejected += read.rejected
        engine.drop(more)


def _unique_name(path: Path, taken: set[str]) -> str:
    stem = re.sub(r"[^0-9A-Za-z_]+", "_", path.name.split(".")[0]).strip("_") or "source"
    name, n = stem, 2
    while name in taken:
        name, n = f"{stem}_{n}", n + 1
    taken.add(name)
    return name


@dataclass
class _Sample:
    """A file's first rows, read as the run will read them, in `table`."""

    kind: Kind
    file: Path
    name: str
    path: str  # as the source will name it (the file, or the glob of a NAME=PATH flag)
    format: str
    table: str
    raw: RawFile
    stored: list | None  # the stored source of that name (an update's), as infer_sources has it


# Fields that tell a person: a JSON document of one object naming none of them, beside an
# array of objects, holds its records in that array (a record of its own, one customer with a
# list of addresses, names the customer).
_PERSON_FIELDS = {
    "first_name", "last_name", "full_name", "email", "phone", "handle", "national_id", "dob",
    "customer_key",
}  # fmt: skip


def _read_sample(
    engine: DuckDBEngine,
    kind: Kind,
    file: Path,
    name: str,
    path: str,
    work_dir: Path,
    i: int,
    stored: list | None,
) -> _Sample:
    fmt = file_format(file, "auto")
    # An NDJSON file of no line is no records (a quiet night), a stored source's in an update.
    if file.stat().st_size == 0 and not (fmt == "ndjson" and _stored_kind(kind, stored)):
        raise InputError(f"{file}: file is empty")
    readable, _ = (
        (file, "binary") if fmt in BINARY_FORMATS else readable_text(file, "auto", work_dir)
    )
    sample = table(f"infer_sample_{i}")
    # Read as the run will (broken rows rejected, the rows after a stray quote kept), so a
    # broken row early in the file leaves the rest of the sample to infer from.
    raw = load_raw(
        engine, file, readable, fmt, None, sample, name, limit=SAMPLE_ROWS, work_dir=work_dir
    )
    if raw.wrapped and not _PERSON_FIELDS & set(fields_for_headers(raw.columns)):
        # ({"total": 3, "users": [...]} read as one record: its `total` an amount, no one.)
        raise raw.wrapped_error(file)
    if (
        raw.rows == raw.rejected
        and _stored_id(kind, stored, _known_columns(kind, stored, fmt, raw)) is None
        and (raw.rejected or not any(fields_for_headers(raw.columns)))
    ):  # (a header alone that names fields is mapped by it: a quiet night's empty export)
        broken = f" ({raw.rejected} rows cannot be read)" if raw.rejected else ""
        raise InputError(f"{file}: no data rows to infer a mapping from{broken}")
    return _Sample(kind, file, name, path, fmt, sample, raw, stored)


def _infer_one(
    engine: DuckDBEngine,
    read: _Sample,
    shares: dict[str, dict[str, float]],
    filled: set[str],
    infer_phone_region: bool = True,
    for_draft: bool = True,
) -> InferredSource:
    kind, path, name, sample, raw = read.kind, read.file, read.name, read.table, read.raw
    stored = read.stored
    header_fields = dict(zip(raw.columns, fields_for_headers(raw.columns), strict=True))
    # A name the header repeats (`email,email`: a home and a work address) is read as email,
    # email_1: the copies are the same field's, mapped together or not at all.
    for column in raw.repeated:
        for copy in repeated_copies(column, raw.columns):
            header_fields[copy] = header_fields.get(column)
    known = _known_columns(kind, stored, read.format, raw)
    stored_id = _stored_id(kind, stored, known)
    has_rows = raw.rows > raw.rejected
    inferred = InferredSource(
        SourceConfig(name=name, kind=kind, path=str(path), format=read.format)
    )
    found: dict[str, list[str]] = {}  # field -> its columns, the preferred first
    candidates: dict[str, list[tuple[str, float]]] = {}  # (column, share) of list fields
    for column in raw.columns:
        field_name = header_fields[column]
        if field_name is None:
            continue
        if field_name == "csat" and kind is not Kind.support:
            # CSAT is how a customer rated a ticket, and a run reads it from support sources
            # alone. A rating in another export rates something else: Mailchimp's
            # MEMBER_RATING (its `member` prefix read as a role, leaving `rating`) is the
            # stars of a subscriber's engagement, a shop's rating a product's.
            inferred.skipped[column] = (
                f"header suggests csat, but a {kind.value} source's rating is no satisfaction "
                "with a ticket (csat is read from support sources)"
            )
            continue
        guarded = GUARDED_HEADERS.get(normalise_header(column))
        check = guarded[1] if guarded else FIELD_BY_NAME[field_name].sniff
        if holds_several(column):
            check += "s"
        if guarded and not has_rows:
            # (a header alone maps its field without a value to check: not a guarded one)
            inferred.skipped[column] = (
                f"header may name {field_name}, but the file has no rows to check its values"
            )
            continue
        if has_rows and column not in filled:
            # An export's column for what the system never holds (Stripe's Invoice ID of
            # payments without invoices): a field of no value, named as if it held one.
            inferred.skipped[column] = (
                f"header suggests {field_name}, but it is empty in the first "
                f"{min(raw.rows, SAMPLE_ROWS)} rows"
            )
            continue
        # A quiet night's export of a stored source may hold its header alone: no value
        # contradicts the header, and the update needs the source, not its values.
        share = shares[column].get(check, 1.0) if has_rows else 1.0
        if check == "handle" and share < _MIN_SHARE[check]:
            # A login's header holding people's names (a helpdesk's `User name`: Jane Doe)
            named = shares[column]["name"]
            if named >= _MIN_SHARE["name"]:
                field_name, check, share = "full_name", "name", named
        if share < _MIN_SHARE[check]:
            inferred.skipped[column] = (
                f"header suggests {field_name}, but only {share:.0%} of values look like one"
            )
            continue
        if FIELD_BY_NAME[field_name].several_columns:
            found.setdefault(field_name, [])  # (ordered later; placed as its first column)
            candidates.setdefault(field_name, []).append((column, share))
            continue
        if any(column in (r, *repeated_copies(r, [column])) for r in raw.repeated):
            inferred.skipped[column] = (
                f"header suggests {field_name}, but the header repeats it: which copy holds "
                "it cannot be told (rename the copies in the file)"
            )
            continue
        evidence = f"; {share:.0%} look like {check.replace('_', ' ')}s" if check != "text" else ""
        earlier = found.get(field_name)
        if earlier and _rank(field_name, earlier[0]) <= _rank(field_name, column):
            inferred.skipped[column] = f"{field_name} is already mapped from '{earlier[0]}'"
            continue
        if earlier:
            inferred.skipped[earlier[0]] = f"{field_name} is mapped from '{column}'"
        found[field_name] = [column]
        inferred.notes[field_name] = f"header '{column}'{evidence}"
    for field_name, headed in candidates.items():
        found[field_name] = _several_columns(field_name, headed, inferred)
    columns: dict[str, str | list[str]] = {f: c[0] if len(c) == 1 else c for f, c in found.items()}
    for column in raw.columns:
        if "email" not in columns and column not in _mapped(columns):
            share = shares[column]["email"]
            if share >= 0.8:
                columns["email"] = column
                inferred.notes["email"] = f"values: {share:.0%} of '{column}' are emails"
        # An order numbered #1001 under a header of no order (Shopify's `Name`).
        if kind is Kind.transactions and "order_id" not in columns:
            share = shares[column]["order_number"]
            if share >= 0.8 and column not in _mapped(columns):
                columns["order_id"] = column
                inferred.notes["order_id"] = (
                    f"values: {share:.0%} of '{column}' are order numbers (#1001)"
                )
                inferred.skipped.pop(column, None)
    stored_columns = _stored_columns(kind, stored, known)
    if stored_columns is not None:
        # A stored source is mapped as the run that wrote it mapped it: tonight's few rows
        # may hold mostly junk ('n/a') in a column, and inferring from them would leave the
        # column out for the good values too. Tonight's other columns are inferred.
        taken = _mapped(stored_columns)
        columns = {
            **{
                f: c
                for f, c in columns.items()
                if f not in stored_columns and not _mapped({f: c}) & taken
            },
            **stored_columns,
        }
        for field_name in stored_columns:
            inferred.notes[field_name] = "the mapping of the stored source"
    inferred.source.columns = columns
    if (
        kind is Kind.transactions
        and "amount" not in columns
        and "amount" not in header_fields.values()
    ):
        # A header suggesting an amount is listed among the columns not mapped, with why;
        # without one, the draft would say nothing of the revenue the run will not have.
        inferred.missing["amount"] = (
            "no header reads as one (Amount, Total, Price, Gross, ...): map the column of "
            "what each order cost, or its rows count as orders with no revenue"
        )
    if stored is not None and stored[0] == kind.value:
        # Read as the stored records were: tonight's few dates may tell nothing.
        inferred.source.dayfirst = stored[2]
        inferred.dayfirst_note = "the setting of the stored source" if stored[2] is not None else ""
        inferred.source.decimal_comma = stored[4]
        inferred.decimal_comma_note = "the setting of the stored source"
        # Its phones too: tonight's few may tell another region than the stored rows did,
        # or none, and the update would refuse the source as changed.
        inferred.source.phone_region = stored[1]
        inferred.phone_region_note = (
            "the setting of the stored source" if stored[1] is not None else ""
        )
    else:
        inferred.dayfirst, inferred.dayfirst_note = _dayfirst(columns, shares)
        inferred.source.decimal_comma, inferred.decimal_comma_note = _decimal_comma(columns, shares)
        if infer_phone_region and has_rows:
            (
                inferred.phone_region,
                inferred.phone_region_leaning,
                inferred.phone_region_note,
            ) = _phone_region(engine, sample, columns)
            if for_draft:
                # Its binding of the phone macros cost 0.2 to 0.4 s a source, in every run.
                inferred.phones_unread = _phones_unread(engine, sample, columns)
    if stored_id is not None:
        # Tonight's delta may hold a repeated or empty id: inferring from it would number the
        # rows instead, and the update could not replace the stored records by id. Such rows
        # are rejected, as a full run rejects them.
        inferred.source.id, inferred.id_note = stored_id, "the id column of the stored source"
    elif _stored_without_id(kind, stored):
        # A night's few orders may each have one row, and Shopify's `Id` then looks unique.
        inferred.source.id, inferred.id_note = None, "the stored source has no id column"
    else:
        inferred.source.id, inferred.id_note = _record_id(engine, sample, raw.columns)
        order = columns.get("order_id") if kind is Kind.transactions else None
        # (one column: only email and phone take several)
        repeated, orders = (
            _repeats(engine, sample, order, raw.columns)
            if inferred.source.id is None and isinstance(order, str)
            else (0, 0)
        )
        if repeated:
            inferred.id_note = (
                f"no unique key column found; '{order}' repeats, as in an export of one row "
                "per line item: the rows sharing an order number are one order, and each row "
                "is named by its order and its place in it (#1001/2)"
            )
            if few_repeated_orders(repeated, orders):
                inferred.id_note += (
                    f"; but only {repeated} of its {orders} order numbers "
                    f"{'repeats' if repeated == 1 else 'repeat'} (the run warns): if those are "
                    f"orders written twice, set `id: {order}`"
                )
    _list_unmapped(inferred, raw.columns, header_fields)
    if not has_rows and stored is None:  # a header alone: nothing was checked
        for field_name, note in inferred.notes.items():
            inferred.notes[field_name] = re.sub(
                r"; [0-9%, ]+ look like \w+", "; the file has no rows to check its values", note
            )
        if inferred.source.id is not None:
            inferred.id_note = "its name looks like a key; the file has no rows to check it"
    engine.drop(sample)
    return inferred


def _list_unmapped(
    inferred: InferredSource, columns: list[str], header_fields: dict[str, str | None]
) -> None:
    """Say why of each column the draft leaves unmapped that no other note names: a draft
    naming only what it mapped hid the misspelt header (`frist_name`) whose values a run
    then left out, and the columns the user must look at to see what else it holds."""
    source = inferred.source
    read = {*source.mapped_columns(), *([source.id] if source.id is not None else [])}
    misspelt = misspelt_columns(source, columns)
    for column in columns:
        if column in read or column in inferred.skipped:
            continue
        field_name = header_fields.get(column)
        if column in misspelt:
            inferred.skipped[column] = (
                f"its header names no field; did you mean {misspelt[column]}? map it so "
                "if that is what it holds (a run warns of it)"
            )
        elif field_name is not None and field_name in source.columns:
            mapped = source.columns_of(field_name)[0]
            inferred.skipped[column] = f"{field_name} is already mapped from '{mapped}'"
        elif looks_like_record_key(column):
            inferred.skipped[column] = (
                f"its name looks like a key; the id is '{source.id}'"
                if source.id is not None
                else "its name looks like a key, but its values are not unique and non-empty "
                "in the rows read: not the id"
            )
        else:
            inferred.skipped[column] = "its header names no field cxunify reads"


def _mapped(columns: dict[str, str | list[str]]) -> set[str]:
    """The columns a mapping reads."""
    return {
        c for mapped in columns.values() for c in ([mapped] if isinstance(mapped, str) else mapped)
    }


def _plain(field_name: str, column: str) -> bool:
    """Whether `column` is named as the field itself (`Phone`, `email`)."""
    return column.lower() == field_name


def _rank(field_name: str, column: str) -> int:
    """Which of a field's columns maps it, the lowest first (the first of equals): the column
    named as the field, then any other its header names, then a guarded header (Mailchimp's
    `CC`), so a two-letter column takes no country from a column named as one."""
    if _plain(field_name, column):
        return 0
    return 2 if normalise_header(column) in GUARDED_HEADERS else 1


def _several_columns(
    field_name: str, headed: list[tuple[str, float]], inferred: InferredSource
) -> list[str]:
    """The columns of a field that takes several (a work and a mobile phone), the preferred
    first: the column named as the field (Salesforce's Phone before MobilePhone), then the
    others in the header's order. A shipping column is left out beside the buyer's own: it
    may hold a parcel's recipient's (a gift's) phone; alone, it is the one there is."""
    own = [(c, s) for c, s in headed if not normalise_header(c).startswith(_SHIPPING)]
    if own:
        for column, _ in (h for h in headed if h not in own):
            inferred.skipped[column] = (
                f"header suggests {field_name}, but a shipping {field_name} may be a "
                "parcel's recipient's; add it to the list by hand if it is the buyer's"
            )
    else:
        own = headed[:1]
        for column, _ in headed[1:]:
            inferred.skipped[column] = f"{field_name} is already mapped from '{own[0][0]}'"
    # (a stable sort; a column of several in a cell last: ingest splits only those after
    # the first)
    ordered = sorted(
        own, key=lambda item: (not _plain(field_name, item[0]), holds_several(item[0]))
    )
    check = FIELD_BY_NAME[field_name].sniff
    headers = ", ".join(f"'{column}'" for column, _ in ordered)
    shares = ", ".join(f"{share:.0%}" for _, share in ordered)
    inferred.notes[field_name] = (
        f"header {headers}; {shares} look like {check}s"
        if len(ordered) == 1
        else f"headers {headers}; {shares} look like {check}s; the first of use matches"
    )
    return [column for column, _ in ordered]


_SHIPPING = ("shipping_", "ship_")


def _value_shares(
    engine: DuckDBEngine, samples: list[tuple[str, list[str]]]
) -> list[tuple[dict[str, dict[str, float]], set[str]]]:
    """Per sample (its table and columns), per column, the share of its non-empty values each
    check of `_CHECKS` accepts (0 for a column with none), and the columns that hold a value.

    One statement for every column of every file, their values unpivoted to rows: the date
    and amount checks are macros whose binding costs more than checking a sample's values.
    A statement per column took seconds per file; one per file, 0.4 s each (16 small exports
    took 8 s to infer, 7 of them binding the same macros again).
    """
    found = [
        ({c: dict.fromkeys(_CHECKS, 0.0) for c in columns}, set[str]()) for _, columns in samples
    ]
    # Columns by position, so no header can clash with the unpivot's own names.
    unpivoted = []
    for i, (name, columns) in enumerate(samples):
        if not columns:
            continue
        texts = ", ".join(
            f"trim(CAST({ident(column)} AS VARCHAR)) AS {ident(str(p))}"
            for p, column in enumerate(columns)
        )
        unpivoted.append(
            f"SELECT {i} AS sample, CAST(position AS INTEGER) AS position, v "
            f"FROM (UNPIVOT (SELECT {texts} FROM {name}) ON COLUMNS(*) "
            "INTO NAME position VALUE v)"
        )
    if not unpivoted:
        return found
    checks = ", ".join(f"avg(CASE WHEN {sql} THEN 1.0 ELSE 0.0 END)" for sql in _CHECKS.values())
    for i, position, *row in engine.rows(
        f"""
        SELECT sample, position, {checks}
        FROM ({" UNION ALL ".join(unpivoted)})
        WHERE v <> ''
        GROUP BY sample, position
        """
    ):
        shares, filled = found[i]
        column = samples[i][1][position]
        shares[column] = {name: float(v) for name, v in zip(_CHECKS, row, strict=True)}
        filled.add(column)
    return found


def _dayfirst(
    columns: dict[str, str | list[str]], shares: dict[str, dict[str, float]]
) -> tuple[bool | None, str]:
    """Whether the source's dates are written day first, when its date columns hold a date
    only one reading makes (15/04/2025, 03.04.2025: day first; 04/15/2025: month first) and
    none read the other way; why, or why it cannot tell."""
    dated = [
        column
        for field_name, column in columns.items()
        if isinstance(column, str) and FIELD_BY_NAME[field_name].sniff in ("date", "timestamp")
    ]
    day = [column for column in dated if shares[column]["day_first"] > 0]
    month = [column for column in dated if shares[column]["month_first"] > 0]
    if day and month:
        return None, (
            f"'{day[0]}' holds dates read only day first (15/04/2025, 03.04.2025) and "
            f"'{month[0]}' dates read only month first (04/15/2025): set it by hand"
        )
    if day:
        return True, f"'{day[0]}' holds dates read only day first (15/04/2025, 03.04.2025)"
    if month:
        return False, f"'{month[0]}' holds dates read only month first (04/15/2025)"
    return None, ""


def _decimal_comma(
    columns: dict[str, str | list[str]], shares: dict[str, dict[str, float]]
) -> tuple[bool | None, str]:
    """True when the source's amounts are written with a decimal comma (12,50, 3.500,00) and
    none with a decimal point (12.50): its 1.234 is then 1234. None otherwise (1.234 stays
    1.234), with why when its amounts hold both."""
    column = columns.get("amount")
    if not isinstance(column, str):
        return None, ""
    comma, point = shares[column]["decimal_comma"], shares[column]["decimal_point"]
    if comma and point:
        return None, (
            f"'{column}' holds amounts with a decimal comma (12,50) and with a decimal point "
            "(12.50): set it by hand"
        )
    if comma:
        return True, f"'{column}' writes a decimal comma (12,50): 1.234 is 1234"
    return None, ""


# A source's phone region is told by its values when a clear majority, two thirds, of them
# point to one country: of the rows naming a country or holding a phone, those whose country
# column names it (a shop's customers abroad, a third at most, leave its own country the
# region); else of its phones, those written with its calling code (+49, 0049) plus those
# written nationally with its trunk prefix (030 1234567: a German number), when the calling
# code is also on two thirds of the phones written with one and on a third of all its phones.
# Without that third, a few +49 numbers would make a British shop's 020 7946 0000 German: a
# trunk prefix of 0 is used by over a hundred countries, so it only counts beside them.
_CLEAR_MAJORITY = 2 / 3
_CALLING_CODE_AT_LEAST = 1 / 3


def _phone_region(
    engine: DuckDBEngine, sample: str, columns: dict[str, str | list[str]]
) -> tuple[str | None, str | None, str]:
    """The region a source's countries, else its phones, tell (see _CLEAR_MAJORITY); when
    they tell none, the region they lean to, if any; and why."""
    country = columns.get("country")
    mapped = columns.get("phone")
    phones = [mapped] if isinstance(mapped, str) else list(mapped or [])
    leaning: list[tuple[str, str]] = []
    if isinstance(country, str):
        region, told, why = _region_of_countries(engine, sample, country, phones)
        if told:
            return region, None, why
        if region is not None:
            leaning.append((region, why))
    if phones:
        region, told, why = _region_of_phones(engine, sample, phones)
        if told:
            return region, None, why
        if region is not None:
            leaning.append((region, why))
    if not leaning:
        return None, None, ""
    return None, leaning[0][0], "; ".join(why for _, why in leaning)


def _phones_unread(
    engine: DuckDBEngine, sample: str, columns: dict[str, str | list[str]]
) -> tuple[int, int] | None:
    """Of the sample's phones (placeholders aside), how many are no number when read in the
    default region, and how many there are; None without a phone column."""
    mapped = columns.get("phone")
    phones = [mapped] if isinstance(mapped, str) else list(mapped or [])
    if not phones:
        return None
    if not engine.rows("SELECT 1 FROM duckdb_functions() WHERE function_name = 'cx_phone_e164'"):
        install_macros(engine.con)  # once per run, for the first source with phones
    values = " UNION ALL ".join(
        f"SELECT trim(CAST({ident(column)} AS VARCHAR)) AS v FROM {sample}" for column in phones
    )
    unread, written = engine.rows(
        f"""
        SELECT count(*) FILTER (WHERE cx_phone_e164(v, $region) IS NULL), count(*)
        FROM ({values}) WHERE v <> '' AND cx_phone_digits(v) IS NOT NULL
        """,
        {"region": StandardizeConfig().phone_region},
    )[0]
    return int(unread), int(written)


def _filled(column: str) -> str:
    return f"coalesce(trim(CAST({ident(column)} AS VARCHAR)) <> '', false)"


def _region_of_countries(
    engine: DuckDBEngine, sample: str, country: str, phones: list[str]
) -> tuple[str | None, bool, str]:
    """The country `country` names most (a phone region), whether it is named on a clear
    majority of the rows naming a country or holding a phone, and why."""
    if not engine.rows("SELECT 1 FROM duckdb_functions() WHERE function_name = 'cx_country_std'"):
        addresses.install(engine.con)  # (only for sources with a country column: 0.1 s)
    phoned = " OR ".join(_filled(column) for column in phones) or "false"
    counts = engine.rows(
        f"""
        SELECT code, count(*) AS n FROM (
            SELECT cx_country_std(nullif(trim(CAST({ident(country)} AS VARCHAR)), '')) AS code,
                   {phoned} AS phoned
            FROM {sample})
        WHERE code IS NOT NULL OR phoned
        GROUP BY code ORDER BY n DESC, code
        """
    )
    rows = sum(n for _, n in counts)
    named = [(code, n) for code, n in counts if code in phonenumbers.SUPPORTED_REGIONS]
    if not named:
        return None, False, ""
    region, n = named[0]
    share = n / rows
    why = f"'{country}' names {region} on {share:.0%} of the rows with a country or phone"
    return region, share >= _CLEAR_MAJORITY, why


def _region_of_phones(
    engine: DuckDBEngine, sample: str, phones: list[str]
) -> tuple[str | None, bool, str]:
    """The region of the calling code most of the phones written with one carry (+49, 0049),
    whether the phones tell it (see _CLEAR_MAJORITY), and why."""
    values = " UNION ALL ".join(
        f"SELECT trim(CAST({ident(column)} AS VARCHAR)) AS v FROM {sample}" for column in phones
    )
    # Per phone, the first three digits after its + or 00 (a calling code is 1 to 3 digits,
    # and none is the start of another), or the first two of one written nationally.
    counts = engine.rows(
        rf"""
        SELECT CASE WHEN plus THEN left(d, 3) WHEN zeros THEN d[3:5] END AS calling,
               CASE WHEN NOT (plus OR zeros) THEN left(d, 2) END AS national, count(*)
        FROM (SELECT regexp_replace(v, '[^0-9]', '', 'g') AS d,
                     regexp_matches(v, '^\(?\s*\+') AS plus,
                     regexp_matches(v, '^\(?\s*00[1-9]') AS zeros
              FROM ({values}) WHERE v <> '' AND {_PHONE})
        GROUP BY ALL
        """
    )
    total = sum(n for _, _, n in counts)
    by_region: dict[str, int] = {}
    written_with_code = 0
    for calling, _, n in counts:
        if calling is None:
            continue
        written_with_code += n
        region = _calling_region(calling)
        if region is not None:
            by_region[region] = by_region.get(region, 0) + n
    if not by_region:
        return None, False, ""
    region, carried = min(by_region.items(), key=lambda item: (-item[1], item[0]))
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    trunk = metadata.national_prefix if metadata is not None else None
    national = sum(
        n for _, start, n in counts if start is not None and trunk and start.startswith(trunk)
    )
    why = (
        f"+{phonenumbers.country_code_for_region(region)} on {carried} of its {total} phones "
        f"({written_with_code} written with a calling code)"
    )
    if national:
        why += f"; {national} more written from {trunk}, as {region} writes numbers nationally"
    told = (
        carried >= _CLEAR_MAJORITY * written_with_code
        and carried >= _CALLING_CODE_AT_LEAST * total
        and carried + national >= _CLEAR_MAJORITY * total
    )
    return region, told, why


def _share_region(inferred: list[InferredSource], stored: set[str], default: str | None) -> None:
    """A source whose values tell no region (national numbers only, no country column: a
    German shop's customer list of 030 numbers) takes the one region the run's other sources
    tell, when they tell one and it is not the default: its orders' +49 numbers say where its
    customers are. Not a source an update stores (it keeps its stored region), nor one whose
    values lean elsewhere, nor when the sources tell more than one region (a US source among
    them keeps the default)."""
    fresh = [item for item in inferred if item.source.name not in stored]
    told = {item.phone_region for item in fresh if item.phone_region is not None}
    if len(told) != 1 or told == {default}:
        return
    (region,) = told
    tellers = ", ".join(item.source.name for item in fresh if item.phone_region == region)
    for item in fresh:
        if item.phone_region is None and item.phone_region_leaning is None:
            item.phone_region = region
            item.phone_region_note = f"its values tell none; the region of {tellers}"


def _calling_region(digits: str) -> str | None:
    """The region of the calling code `digits` start with (its main one: US for +1)."""
    for length in (1, 2, 3):
        code = int(digits[:length] or 0)
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            region = phonenumbers.region_code_for_country_code(code)
            # (not +800 and the other codes of no country: 001)
            return region if region in phonenumbers.SUPPORTED_REGIONS else None
    return None


def _record_id(engine: DuckDBEngine, sample: str, columns: list[str]) -> tuple[str | None, str]:
    # A row of no value at all (`,,,,`) is rejected as empty whatever the id: it does not
    # make the id column's values missing. A row repeating another whole (an export's
    # duplicate: every column alike) does not make its id repeat either: one extra copy of an
    # order turned a source's order_id into line items' order numbers, every row renamed
    # (ORD-1/1), so the duplicate is rejected as `duplicate id`, as a config's run rejects it.
    blank = " AND ".join(f"coalesce(trim({ident(c)}), '') = ''" for c in columns) or "false"
    distinct = _distinct_rows(sample, columns)
    [(rows,)] = engine.rows(f"SELECT count(*) FROM {sample} WHERE NOT ({blank})")
    for column in columns:
        if not looks_like_record_key(column):
            continue
        total, unique, present = engine.rows(
            f"SELECT count(*), count(DISTINCT {ident(column)}), count(NULLIF(trim("
            f"{ident(column)}), '')) FROM {distinct} WHERE NOT ({blank})"
        )[0]
        if total == unique == present:
            note = f"unique and non-empty in the first {min(rows, SAMPLE_ROWS)} rows"
            if rows > total:
                copies = rows - total
                note += (
                    f" but for {copies} {'row' if copies == 1 else 'rows'} repeating another "
                    "whole (a duplicate, rejected as such)"
                )
            return column, note
    return None, "no unique key column found: rows are identified by their row number"


def _distinct_rows(sample: str, columns: list[str]) -> str:
    """The sample's rows, a row repeating another whole read once."""
    if not columns:
        return sample
    return f"(SELECT DISTINCT {', '.join(ident(c) for c in columns)} FROM {sample})"


def _repeats(engine: DuckDBEngine, sample: str, column: str, columns: list[str]) -> tuple[int, int]:
    """How many values of `column` are on more than one row of the sample, of rows that
    differ (a row repeating another whole is a duplicate, no line of an order), and how many
    values it holds."""
    value = f"nullif(trim({ident(column)}), '')"
    [(repeated, values)] = engine.rows(
        f"SELECT count(*) FILTER (WHERE n > 1), count(*) FROM (SELECT {value} AS v, count(*) "
        f"AS n FROM {_distinct_rows(sample, columns)} WHERE {value} IS NOT NULL GROUP BY v)"
    )
    return int(repeated), int(values)


def _stored_kind(kind: Kind, stored: list | None) -> bool:
    """Whether `stored` is a stored source of this kind."""
    return stored is not None and stored[0] == kind.value


def _known_columns(kind: Kind, stored: list | None, fmt: str, raw: RawFile) -> list[str]:
    """The columns a file has: its header's, or, for NDJSON of no record (its keys are its
    records'), the stored source's id and mapped columns, as the run that stored it read it."""
    if fmt != "ndjson" or raw.rows > raw.rejected or not _stored_kind(kind, stored):
        return list(raw.columns)
    assert stored is not None
    mapping = stored[5] if len(stored) > 5 and isinstance(stored[5], dict) else {}
    mapped = [c for m in mapping.values() for c in ([m] if isinstance(m, str) else m)]
    return [*raw.columns, *([stored[3]] if isinstance(stored[3], str) else []), *mapped]


def _stored_id(kind: Kind, stored: list | None, columns: list[str]) -> str | None:
    """The stored source's id column, when it is of this kind and the file has that column."""
    if stored is None or stored[0] != kind.value:
        return None
    stored_id = stored[3]
    return stored_id if isinstance(stored_id, str) and stored_id in columns else None


def _stored_without_id(kind: Kind, stored: list | None) -> bool:
    """Whether the stored source, of this kind, had no id column: its records were named by
    their row numbers or by their order and line, and tonight's rows must be named alike,
    not by a column a few rows happen to hold unique."""
    return stored is not None and stored[0] == kind.value and not isinstance(stored[3], str)


def _stored_columns(
    kind: Kind, stored: list | None, columns: list[str]
) -> dict[str, str | list[str]] | None:
    """The stored source's mapping, of the columns the file has, when it is of this kind
    and its mapping was stored (a field's list keeps its columns the file has)."""
    if stored is None or stored[0] != kind.value or len(stored) < 6:
        return None
    mapping = stored[5]
    if not isinstance(mapping, dict):
        return None
    kept: dict[str, str | list[str]] = {}
    for field_name, mapped in mapping.items():
        if isinstance(mapped, str) and mapped in columns:
            kept[field_name] = mapped
        elif isinstance(mapped, list):
            present = [c for c in mapped if isinstance(c, str) and c in columns]
            if present:
                kept[field_name] = present
    return kept


def config_from_flags(
    paths_by_kind: dict[Kind, list[str]],
    work_dir: Path,
    phone_region: str | None = None,
    dayfirst: bool = False,
    stored: dict[str, list] | None = None,
    require_columns: bool = True,
    for_draft: bool = True,
) -> tuple[Config, list[InferredSource]]:
    """A validated Config for zero-config runs, and what was inferred (for ``init``);
    `stored` and `for_draft` as for `infer_sources`. A file of which no column is recognised
    is an error unless not `require_columns` (``init`` drafts a config for the user to map
    it)."""
    try:
        # Before the exports are read, and named as the flag it came from: the config it
        # goes into is made here, not written by the user.
        phone_region_code(phone_region)
    except ValueError as exc:
        raise UserError(f"--phone-region: {exc}") from None
    # A region given is every source's; else each source's is inferred from its values.
    inferred = infer_sources(
        paths_by_kind,
        work_dir,
        stored,
        infer_phone_regions=phone_region is None,
        for_draft=for_draft,
    )
    default_region = phone_region or StandardizeConfig().phone_region
    if phone_region is None:
        _share_region(inferred, set(stored or {}), default_region)
    for item in inferred:
        # A source whose dates tell how they are written is read so, whatever the flag says
        # for the others; one whose dates do not tell is read as the flag says.
        if item.dayfirst is not None and item.dayfirst != dayfirst:
            item.source.dayfirst = item.dayfirst
        if item.phone_region is not None and item.phone_region != default_region:
            item.source.phone_region = item.phone_region
    unmapped = [i.source for i in inferred if not i.source.columns]
    if require_columns and unmapped:
        # Its rows would have no field to link by: each a customer with nothing but its id.
        raise InputError(
            "; ".join(
                f"--{s.kind.value} {s.path}: no column is recognised as a customer field; map "
                f"its columns in a config (`cxunify init --{s.kind.value} {s.path} --to "
                "cx.yaml` drafts one)"
                for s in unmapped
            )
        )
    raw = {
        "sources": [i.source.model_dump(mode="json", exclude_defaults=True) for i in inferred],
        "standardize": {
            "phone_region": default_region,
            "dayfirst": dayfirst,
        },
    }
    config = validate_config(raw, origin="<flags>", base_dir=Path.cwd())
    return config, inferred


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_./-]*", text) and text.lower() not in {
        "true",
        "false",
        "yes",
        "no",
        "null",
        "on",
        "off",
        "y",
        "n",
        "~",
    }:
        return text
    return json.dumps(text, ensure_ascii=False)


def render_yaml(config: Config, inferred: list[InferredSource], relative_to: Path | None) -> str:
    """The inferred config as YAML with a comment on every mapped column."""
    lines = [
        "# cxunify config inferred by `cxunify init`. Review every mapping, then run:",
        "#   cxunify unify --config THIS_FILE --out out/",
        "sources:",
    ]
    for item in inferred:
        source = item.source
        path = Path(source.path)
        if relative_to is not None:
            try:
                path = path.relative_to(relative_to.resolve())
            except ValueError:
                import os

                path = Path(os.path.relpath(path, relative_to.resolve()))
        lines += [
            f"  - name: {_scalar(source.name)}",
            f"    kind: {source.kind.value}",
            f"    path: {_scalar(str(path))}",
            f"    format: {source.format}",
        ]
        if source.decimal_comma is not None:
            lines.append(
                f"    decimal_comma: {_scalar(source.decimal_comma)}  # {item.decimal_comma_note}"
            )
        elif item.decimal_comma_note:
            lines.append(f"    # decimal_comma: not inferred: {item.decimal_comma_note}")
        if source.dayfirst is not None:
            lines.append(f"    dayfirst: {_scalar(source.dayfirst)}  # {item.dayfirst_note}")
        elif item.dayfirst is None and item.dayfirst_note:
            lines.append(f"    # dayfirst: not inferred: {item.dayfirst_note}")
        if source.phone_region is not None:
            lines.append(
                f"    phone_region: {_scalar(source.phone_region)}  # {item.phone_region_note}"
            )
        elif item.phone_region_leaning not in (None, config.standardize.phone_region):
            lines.append(
                f"    # phone_region: not inferred: {item.phone_region_note}; two thirds must "
                f"agree (set {item.phone_region_leaning} here if its numbers are)"
            )
        elif (
            item.phones_unread is not None
            and config.standardize.phone_region == StandardizeConfig().phone_region
            and item.phones_unread[0] * 2 > item.phones_unread[1]
        ):
            unread, sampled = item.phones_unread
            counted = (
                "the one phone sampled is"
                if sampled == 1
                else f"{unread} of the {sampled} phones sampled are"
            )
            lines.append(
                f"    # phone_region: not inferred, and {counted} no number in "
                f"{config.standardize.phone_region}: set the country "
                f"{'it is' if sampled == 1 else 'they are'} from here"
            )
        if source.id is not None:
            lines.append(f"    id: {_scalar(source.id)}  # {item.id_note}")
        else:
            lines.append(f"    # id: (none) {item.id_note}")
        lines.append(
            "    columns:"
            if source.columns
            else "    columns: {}  # no column recognised: map at least one before running"
        )
        for field_name, mapped in source.columns.items():
            written = (
                _scalar(mapped)
                if isinstance(mapped, str)
                else f"[{', '.join(_scalar(c) for c in mapped)}]"
            )
            lines.append(f"      {field_name}: {written}  # {item.notes[field_name]}")
        for column, why in item.skipped.items():
            lines.append(f"    # not mapped: {_scalar(column)}: {why}")
        for field_name, why in item.missing.items():
            lines.append(f"    # {field_name}: no column mapped: {why}")
    lines += [
        "standardize:",
        f"  phone_region: {_scalar(config.standardize.phone_region or 'US')}"
        "  # region for numbers written without +country code",
        f"  dayfirst: {_scalar(config.standardize.dayfirst)}"
        "  # true: 03/04/2020 is 3 April; false: March 4",
        "",
    ]
    return "\n".join(lines)
