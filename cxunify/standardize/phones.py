"""Phone numbers to E.164, as DuckDB SQL macros.

Customer exports hold millions of phone numbers written every way people write them. Calling
``phonenumbers.parse`` once per row would make phone standardisation the slowest step of a run,
so this module reads the ``phonenumbers`` metadata once, at :func:`install` time, into DuckDB
reference tables and session variables, and re-implements the library's parsing rules as SQL
macros. DuckDB then normalises a whole column vectorised, with no per-row Python.

After ``install(con)``:

* ``cx_phone_e164(raw VARCHAR, region VARCHAR) -> VARCHAR`` gives ``'+15550102233'``, or NULL
  for null, empty, junk or impossible input. ``region`` (ISO 3166 alpha-2, any case; a literal
  or a column) is the region assumed for numbers written without a country code; NULL accepts
  only numbers with ``+`` in front.
* ``cx_phone_digits(raw VARCHAR) -> VARCHAR`` gives the digits of the number part (extension
  and any second number dropped), NULL when there are none or they are a placeholder (fewer
  than 6, one digit repeated, or a run such as 1234567890).

The SQL follows ``phonenumbers.parse`` step by step (international prefix, country code taken
from a number written without ``+``, national prefix and its transform rules, the national
number pattern that vetoes a strip) and then keeps a number only when
``is_possible_number_with_reason`` would say ``IS_POSSIBLE``. On purpose it is stricter than
the library in a few places: a local-only length (a US number without its area code) is not a
complete E.164 number so it gives NULL; so do fewer than 6 digits, one digit repeated or a
run up or down (1234567890, in all the digits or in the national number), letters
between digits (vanity numbers, prose) and a ``+`` after the start.

The rules differ per row (by region, then by country code), and DuckDB compiles a regex that is
not a constant again for every row. So the metadata's regexes are turned into cheaper data
where that is exact (prefix rules into lists of literal prefixes; the two-digit starts and the
lengths a pattern allows, as filters), and a regex is left to run only for the few rows those
cannot decide.

Tables and macros are created in the connection's database (an in-memory one, or the cached
file of ``standardize.cache``); the session variables the macros read are the connection's
own, so every connection or cursor needs its own ``install``.
"""

from __future__ import annotations

import functools
import itertools
import re
import re._constants as sre_constants
import re._parser as sre_parser
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import duckdb
import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberDesc

from cxunify.standardize import digits

__all__ = ["COUNTRY_CODES_TABLE", "REGIONS_TABLE", "install"]

REGIONS_TABLE = "cx_ref_phone_regions"
COUNTRY_CODES_TABLE = "cx_ref_phone_country_codes"
_RULES_TABLE = "cx_ref_phone_rules"

# The longest input phonenumbers itself will look at; longer text is not a phone number.
_MAX_INPUT_LENGTH = 250
# Longest national significant number phonenumbers accepts.
_MAX_NSN_LENGTH = 17
# Rule sets are found by list index, O(1) per row: a country code (below 1000) indexes one list
# of rule ids, a region's two letters (26 * 26 slots) another.
_COUNTRY_CODE_SLOTS = 1000
_REGION_SLOTS = 26 * 26
# A prefix regex with more expansions than this stays a regex: scanning a longer list of
# literals per row costs about as much as compiling the regex.
_MAX_EXPANSIONS = 200
# Length of the starts kept as a filter before a regex runs.
_START_LENGTH = 2

# An extension at the end: "x123", "ext. 123", "extension 5", "#123".
_EXTENSION = r"(?i)(?:e?xt(?:ension|n)?|x|#)\s*[.:#-]?\s*[0-9]{1,10}\s*#?\s*\)?\s*$"


# --- Turning metadata regexes into data -----------------------------------------------------
# The metadata's patterns use a small regex subset (literals, classes, groups, alternation,
# bounded repeats, '$'). Anything outside it raises _Unsupported and the regex is kept as is.


class _Unsupported(Exception):
    pass


# re._parser has no type stubs. A parsed pattern (a SubPattern, or a list of its items) is an
# iterable of (opcode, operand); a repeat's operand is (min, max, the repeated items).
_Items = Iterable[tuple[object, object]]
_Repeat = tuple[int, int, _Items]


def _class_chars(av: object) -> list[str]:
    chars: set[str] = set()
    for op, value in av:  # type: ignore[attr-defined]
        if op is sre_constants.LITERAL:
            chars.add(chr(value))
        elif op is sre_constants.RANGE:
            chars.update(chr(c) for c in range(value[0], value[1] + 1))
        elif op is sre_constants.CATEGORY and value is sre_constants.CATEGORY_DIGIT:
            chars.update("0123456789")
        else:
            raise _Unsupported(op)
    # Inputs are ASCII digits by the time a pattern sees them.
    return sorted(c for c in chars if c.isascii() and c.isdigit())


def _expand_seq(items: _Items, limit: int) -> list[str]:
    out = [""]
    for op, av in items:
        alternatives = _expand_item(op, av, limit)
        if len(out) * len(alternatives) > limit:
            raise _Unsupported("too many")
        out = [a + b for a in out for b in alternatives]
    return out


def _expand_item(op: object, av: object, limit: int) -> list[str]:
    if op is sre_constants.LITERAL:
        return [chr(av)]  # type: ignore[arg-type]
    if op is sre_constants.IN:
        return _class_chars(av)
    if op is sre_constants.BRANCH:
        return [s for alt in av[1] for s in _expand_seq(alt, limit)]  # type: ignore[index]
    if op is sre_constants.SUBPATTERN:
        return _expand_seq(av[-1], limit)  # type: ignore[index]
    if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
        low, high, item = cast(_Repeat, av)
        if high is sre_constants.MAXREPEAT:
            raise _Unsupported("unbounded")
        once = _expand_seq(item, limit)
        # Choices of different lengths inside a repeat backtrack in an order a flat list of
        # counts does not reproduce.
        if high > 1 and len({len(s) for s in once}) > 1:
            raise _Unsupported("ambiguous repeat")
        # Greedy tries the most repetitions first, lazy the fewest: the order decides which
        # alternative wins when several are prefixes of a number.
        counts = (
            range(high, low - 1, -1) if op is sre_constants.MAX_REPEAT else range(low, high + 1)
        )
        # Sized before it is built: '\d{10}' alone would be ten billion strings.
        if sum(len(once) ** count for count in counts) > limit:
            raise _Unsupported("too many")
        return ["".join(p) for count in counts for p in itertools.product(once, repeat=count)]
    raise _Unsupported(op)


def _expand(pattern: str | None) -> list[str] | None:
    """Every string ``pattern`` matches, in the order Python's backtracking tries them.

    The first of them that a number starts with is exactly what ``re.match`` would match.
    None when the pattern is absent, not a small finite set, or outside the supported subset.
    """
    if not pattern:
        return None
    try:
        return _expand_seq(list(sre_parser.parse(pattern)), _MAX_EXPANSIONS)
    except (_Unsupported, re.error, RecursionError):
        return None


def _starts_seq(items: _Items, k: int) -> set[str]:
    # Strings of length k that some match starts with, plus whole matches shorter than k.
    current = {""}
    for op, av in items:
        following: set[str] = set()
        for w in current:
            if len(w) == k:
                following.add(w)
            else:
                following.update(w + s for s in _starts_item(op, av, k - len(w)))
        current = following
    return current


def _starts_item(op: object, av: object, k: int) -> set[str]:
    if op is sre_constants.LITERAL:
        return {chr(av)}  # type: ignore[arg-type]
    if op is sre_constants.IN:
        return set(_class_chars(av))
    if op is sre_constants.BRANCH:
        return {s for alt in av[1] for s in _starts_seq(alt, k)}  # type: ignore[index]
    if op is sre_constants.SUBPATTERN:
        return _starts_seq(av[-1], k)  # type: ignore[index]
    if op is sre_constants.AT:
        # Anchors consume nothing; ignoring them can only widen the set, which keeps it safe
        # as a filter.
        return {""}
    if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
        low, high, item = cast(_Repeat, av)
        # Past low + k repetitions, no new start of length <= k can appear.
        top = low + k + 1 if high is sre_constants.MAXREPEAT else min(high, low + k + 1)
        out: set[str] = set()
        for count in range(low, top + 1):
            out |= _starts_seq(list(item) * count, k)
        return out
    raise _Unsupported(op)


def _starts(pattern: str | None) -> list[str] | None:
    """What a string matching ``pattern`` can start with: its first ``_START_LENGTH``
    characters, or all of it when shorter. None means "cannot tell", so no filtering.
    """
    if not pattern:
        return None
    try:
        return sorted(_starts_seq(list(sre_parser.parse(pattern)), _START_LENGTH))
    except (_Unsupported, re.error, RecursionError):
        return None


# --- Reference tables ------------------------------------------------------------------------


# phonenumbers' stubs make general_desc and country_code Optional because PhoneMetadata's
# constructor defaults them to None; every entry phonenumbers loads from its metadata sets both.
def _general_desc(md: PhoneMetadata) -> PhoneNumberDesc:
    return cast(PhoneNumberDesc, md.general_desc)


def _country_code(md: PhoneMetadata) -> int:
    return cast(int, md.country_code)


@dataclass(frozen=True)
class _Numbering:
    """The parts of one phonenumbers metadata entry the SQL needs."""

    national_prefix_for_parsing: str | None
    national_prefix_transform_rule: str | None
    national_prefix_group_count: int
    national_number_pattern: str | None
    possible_lengths: list[int]
    local_only_lengths: list[int]

    @classmethod
    def of(cls, md: PhoneMetadata) -> _Numbering:
        npfp = md.national_prefix_for_parsing or None
        groups = re.compile(npfp).groups if npfp else 0
        # phonenumbers only applies a transform rule through a capturing group.
        transform = md.national_prefix_transform_rule if groups else None
        desc = _general_desc(md)
        return cls(
            national_prefix_for_parsing=npfp,
            national_prefix_transform_rule=transform or None,
            national_prefix_group_count=groups,
            national_number_pattern=desc.national_number_pattern,
            possible_lengths=sorted(desc.possible_length),
            local_only_lengths=sorted(desc.possible_length_local_only),
        )

    def row(self) -> tuple[object, ...]:
        # Without a transform rule the prefix rule only strips, so its literal expansion is
        # exact; with one, the regex is needed to rewrite.
        npfp = self.national_prefix_for_parsing
        return (
            npfp,
            self.national_prefix_transform_rule,
            self.national_prefix_group_count,
            None if self.national_prefix_transform_rule else _expand(npfp),
            _starts(npfp),
            self.national_number_pattern,
            _starts(self.national_number_pattern),
            self.possible_lengths,
            self.local_only_lengths,
        )


_NUMBERING_COLUMNS = """
    national_prefix_for_parsing VARCHAR,
    national_prefix_transform_rule VARCHAR,
    national_prefix_group_count INTEGER NOT NULL,
    national_prefix_expansions VARCHAR[],
    national_prefix_starts VARCHAR[],
    national_number_pattern VARCHAR,
    national_number_starts VARCHAR[],
    possible_lengths INTEGER[] NOT NULL,
    local_only_lengths INTEGER[] NOT NULL
"""

_CREATE_REGIONS = f"""
CREATE OR REPLACE TABLE {REGIONS_TABLE} (
    region VARCHAR PRIMARY KEY,
    country_code INTEGER NOT NULL,
    is_main_region BOOLEAN NOT NULL,
    national_prefix VARCHAR,
    international_prefix VARCHAR,
    preferred_international_prefix VARCHAR,
    international_prefix_expansions VARCHAR[],
    international_prefix_starts VARCHAR[],
    {_NUMBERING_COLUMNS}
)
"""

_CREATE_COUNTRY_CODES = f"""
CREATE OR REPLACE TABLE {COUNTRY_CODES_TABLE} (
    country_code INTEGER PRIMARY KEY,
    main_region VARCHAR NOT NULL,
    regions VARCHAR[] NOT NULL,
    all_possible_lengths INTEGER[] NOT NULL,
    {_NUMBERING_COLUMNS}
)
"""


def _mask(lengths_column: str) -> str:
    return f"coalesce(list_sum(list_transform({lengths_column}, lambda n: 1 << n)), 0)::INTEGER"


# One row per rule set: every region with its own rules, and every country code with the rules
# of its main region (what phonenumbers applies once a number has a country code). Regexes are
# derived here from table values, never spliced into SQL. Lists become scalars (length lists bit
# masks, others '|'-joined strings): DuckDB materialises a constant list for every vector it is
# looked up in, and copies nested lists slowly, so scalar rules keep the per-row cost low.
_CREATE_RULES = f"""
CREATE OR REPLACE TABLE {_RULES_TABLE} AS
WITH keyed AS (
    SELECT 'cc' AS kind, country_code AS slot, NULL::VARCHAR AS international_prefix,
           NULL::VARCHAR[] AS international_prefix_expansions,
           NULL::VARCHAR[] AS international_prefix_starts, * EXCLUDE (country_code), country_code
    FROM {COUNTRY_CODES_TABLE}
    UNION ALL BY NAME
    SELECT 'region' AS kind, (ascii(region[1]) - 65) * 26 + ascii(region[2]) - 65 AS slot, *
    FROM {REGIONS_TABLE}
)
SELECT
    row_number() OVER (ORDER BY kind, slot) AS id,
    kind,
    slot,
    struct_pack(
        cc := country_code::VARCHAR,
        idd_alts := array_to_string(international_prefix_expansions, '|'),
        idd_re := CASE WHEN international_prefix_expansions IS NULL
                       THEN '^(?:' || international_prefix || ')' END,
        idd_starts := '|' || array_to_string(international_prefix_starts, '|') || '|',
        np_alts := array_to_string(national_prefix_expansions, '|'),
        np_re := CASE WHEN national_prefix_expansions IS NULL
                      THEN '^(?:' || national_prefix_for_parsing || ')' END,
        np_starts := '|' || array_to_string(national_prefix_starts, '|') || '|',
        np_has_transform := national_prefix_transform_rule IS NOT NULL,
        -- The whole number, so that the last group's capture can be read out on its own.
        np_full_re := '^(?:' || national_prefix_for_parsing || ')[0-9]*$',
        np_last_group := CASE WHEN national_prefix_group_count > 0
                              THEN '\\' || national_prefix_group_count::VARCHAR END,
        np_transform := national_prefix_transform_rule,
        nn_re := national_number_pattern,
        nn_starts := '|' || array_to_string(national_number_starts, '|') || '|',
        possible_mask := {_mask("possible_lengths")},
        local_mask := {_mask("local_only_lengths")},
        pattern_mask := {_mask("possible_lengths")} | {_mask("local_only_lengths")},
        min_len := list_min(possible_lengths),
        max_len := list_max(possible_lengths)
    ) AS rules
FROM keyed
"""


# Cached: reading every region's metadata and expanding its patterns takes a tenth of a second
# of Python, and each engine (each run, each test) installs the macros. The rows are read,
# never changed.
@functools.cache
def _region_rows() -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        md = PhoneMetadata.metadata_for_region(region)
        # The key arithmetic assumes two ASCII letters; every supported region has them.
        if md is None or not re.fullmatch("[A-Z]{2}", region):
            continue
        country_code = _country_code(md)
        main = phonenumbers.region_code_for_country_code(country_code)
        rows.append(
            (
                region,
                country_code,
                main == region,
                md.national_prefix,
                md.international_prefix,
                md.preferred_international_prefix,
                _expand(md.international_prefix),
                _starts(md.international_prefix),
                *_Numbering.of(md).row(),
            )
        )
    return rows


@functools.cache
def _country_code_rows() -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for cc, regions in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()):
        if not 0 < cc < _COUNTRY_CODE_SLOTS:
            continue
        main = regions[0]
        md = PhoneMetadata.metadata_for_region_or_calling_code(cc, main)
        if md is None:
            continue
        every_length: set[int] = set()
        for region in regions:
            other = PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
            if other is not None:
                every_length.update(_general_desc(other).possible_length)
        # possible_lengths are the main region's: phonenumbers judges "possible" by those
        # alone, and the union would admit e.g. 7-digit +1 numbers through Canada.
        rows.append((cc, main, list(regions), sorted(every_length), *_Numbering.of(md).row()))
    return rows


# --- Macros ----------------------------------------------------------------------------------


class _Chain:
    """A pipeline of per-row stages, each computing fields of a state struct.

    DuckDB has no LET, and a macro argument is substituted wherever its parameter appears, so
    an intermediate value used twice would be computed twice. A lambda binds a value once, but
    lambdas nested in lambda bodies double the bind time per level; stages chained through the
    list argument (``list_transform([<previous stage>], lambda s: ...)``) bind in linear time.
    Each stage passes on only the fields later stages read, since copying a wide state into
    each stage's list is most of a stage's cost. In stage expressions ``<sigil>name`` reads
    field ``name``; a chain nested in a stage of another uses its own sigil and lambda name.
    """

    def __init__(self, sigil: str, param: str, **seed: str) -> None:
        self.ref = re.compile(re.escape(sigil) + r"(\w+)")
        self.sigil = sigil
        self.param = param
        self.stages: list[dict[str, str]] = [seed]

    def add(self, **fields: str) -> None:
        self.stages.append(fields)

    def _refs(self, exprs: Iterable[str]) -> set[str]:
        return {m for e in exprs for m in self.ref.findall(e)}

    def _sql(self, expr: str) -> str:
        return self.ref.sub(rf"{self.param}.\1", expr)

    def result(self, expr: str) -> str:
        needed = [self._refs([expr])]
        for stage in reversed(self.stages[1:]):
            needed.append((needed[-1] - stage.keys()) | self._refs(stage.values()))
        needed.reverse()
        seed, *rest = self.stages
        sql = "struct_pack(" + ", ".join(f"{k} := {v}" for k, v in seed.items()) + ")"
        available = set(seed)
        for stage, later in zip(rest, needed[1:], strict=True):
            kept = sorted((available & later) - set(stage))
            fields = [f"{k} := {self.param}.{k}" for k in kept]
            fields += [f"{k} := {self._sql(v)}" for k, v in stage.items()]
            sql = (
                f"list_transform([{sql}], lambda {self.param}: struct_pack({', '.join(fields)}))[1]"
            )
            available = set(kept) | set(stage)
        return f"list_transform([{sql}], lambda {self.param}: {self._sql(expr)})[1]"


# Rules read per rule set, each a session variable ``cx_phone_<field>``: a list indexed by id.
_RULE_FIELDS = (
    "cc",
    "idd_alts",
    "idd_re",
    "idd_starts",
    "np_alts",
    "np_re",
    "np_starts",
    "np_has_transform",
    "np_full_re",
    "np_last_group",
    "np_transform",
    "nn_re",
    "nn_starts",
    "possible_mask",
    "local_mask",
    "pattern_mask",
    "min_len",
    "max_len",
)
_PREFIX_FIELDS = ("np_alts", "np_re", "np_starts")
_LENGTH_FIELDS = ("possible_mask", "local_mask", "min_len", "max_len")
_STRIP_FIELDS = (
    "np_has_transform",
    "np_full_re",
    "np_last_group",
    "np_transform",
    "np_re",
    "nn_re",
    "nn_starts",
    "pattern_mask",
    *_LENGTH_FIELDS,
)


def _rule(field: str, rule_id: str) -> str:
    return f"getvariable('cx_phone_{field}')[{rule_id}]"


def _lookup(prefix: str, rule_id: str, fields: Iterable[str]) -> dict[str, str]:
    """State fields ``{prefix}{field}`` holding the rules of id ``rule_id``.

    A stage looks rules up for the stages after it: a lookup inside a macro argument would be
    repeated wherever the macro uses it.
    """
    return {f"{prefix}{f}": _rule(f, rule_id) for f in fields}


def _len_status(n: str, p: str) -> str:
    return f"cx_phone__len_status({n}, {', '.join(p + f for f in _LENGTH_FIELDS)})"


def _viable(n: str, p: str) -> str:
    return f"cx_phone__viable({n}, {p}nn_re, {p}nn_starts, {p}pattern_mask)"


def _add_strip(chain: _Chain, src: str, npl: str, rule_id: str) -> None:
    """Add field ``stripped``: ``src`` without the national prefix of length ``npl`` (NULL for
    none) by the rules of ``rule_id``, and the lookups ``r_*`` of those rules.

    phonenumbers' _maybe_strip_national_prefix_carrier_code: strip (or rewrite by the transform
    rule, when its last group took part in the match) unless that turns a number matching the
    national number pattern into one that does not.
    """
    s = chain.sigil
    r = f"{s}r_"
    chain.add(**_lookup("r_", rule_id, _STRIP_FIELDS))
    chain.add(
        nps=f"""
        CASE WHEN {npl} IS NULL THEN NULL
             WHEN NOT {r}np_has_transform THEN substr({src}, {npl} + 1)
             WHEN regexp_replace({src}, {r}np_full_re, {r}np_last_group) = ''
                  THEN substr({src}, {npl} + 1)
             ELSE regexp_replace({src}, {r}np_re, {r}np_transform)
        END"""
    )
    chain.add(
        stripped=f"""
        CASE WHEN {s}nps IS NULL THEN {src}
             WHEN {_viable(src, r)} AND NOT {_viable(f"{s}nps", r)} THEN {src}
             ELSE {s}nps
        END"""
    )


def _own_country_code_sql() -> str:
    """For a national-looking number starting with the region's own country code ('15550102233'
    in US, '447700900123' in GB): read it as international when only that reading fits, as
    phonenumbers does. The cheap length test goes first so the pattern regexes rarely run.
    """
    chain = _Chain("%", "cx__b", d="@d", cc="@r_cc", rid="@rid", plus="@plus")
    chain.add(
        rest="substr(%d, length(%cc) + 1)",
        **_lookup("p_", "%rid", _PREFIX_FIELDS),
    )
    chain.add(npl="cx_phone__prefix_len(%rest, %p_np_alts, %p_np_re, %p_np_starts)")
    _add_strip(chain, "%rest", "%npl", "%rid")
    return chain.result(
        f"""
        CASE WHEN CASE WHEN {_len_status("%d", "%r_")} = 'LONG' THEN true
                       WHEN {_viable("%d", "%r_")} THEN false
                       ELSE {_viable("%stripped", "%r_")} END
             THEN {{'cc': %cc, 'nsn': %stripped, 'plain': false}}
             -- After a '+' a national reading is no reading at all.
             WHEN NOT %plus THEN {{'cc': %cc, 'nsn': %d, 'plain': true}}
        END"""
    )


def _national_number_sql() -> str:
    """The national number with its national prefix stripped, for rows that have one."""
    chain = _Chain("~", "cx__f", n="@f_n", npl="@f_npl", sid="@sid")
    _add_strip(chain, "~n", "~npl", "~sid")
    # parse() keeps a stripped national number only when its length still works.
    return chain.result(
        f"""
        CASE WHEN {_len_status("~stripped", "~r_")} IN ('POSSIBLE', 'LONG') THEN ~stripped
             ELSE ~n END"""
    )


def _e164_sql() -> str:
    # Casts let a column of numbers stored as integers through too.
    chain = _Chain(
        "@",
        "cx__s",
        t="cx_phone__number_part(CAST(raw AS VARCHAR))",
        rid="cx_phone__region_id(CAST(region AS VARCHAR))",
    )
    chain.add(
        d="regexp_replace(@t, '[^0-9]', '', 'g')",
        plus="starts_with(@t, '+')",
        # Letters between digits are vanity numbers or prose: guessing at them would link
        # customers on invented numbers.
        junk="@t IS NULL OR regexp_matches(@t, '\\pL|[^+]\\+')",
        **_lookup("r_", "@rid", ("cc", "idd_alts", "idd_re", "idd_starts")),
    )
    ok = f"(NOT @junk AND {_not_placeholder('@d')})"
    chain.add(
        ok=ok,
        pcc=f"CASE WHEN {ok} AND @plus THEN cx_phone__cc_prefix(@d) END",
        iddl=f"""
        CASE WHEN {ok}
             THEN cx_phone__prefix_len(@d, @r_idd_alts, @r_idd_re, @r_idd_starts) END""",
    )
    # A dialled international prefix; a following '0' means it was really a trunk prefix.
    chain.add(
        irest="""
        CASE WHEN @pcc IS NULL AND @iddl IS NOT NULL AND substr(@d, @iddl + 1, 1) <> '0'
             THEN substr(@d, @iddl + 1) END""",
    )
    # Country code, national number, and whether it was read as national. Like parse(), a '+'
    # followed by no known country code is retried without it, but only a reading that finds a
    # country code (after an international prefix, or the region's own) counts.
    chain.add(
        p=f"""
        CASE WHEN NOT @ok THEN NULL
             WHEN @pcc IS NOT NULL
                  THEN {{'cc': @pcc, 'nsn': substr(@d, length(@pcc) + 1), 'plain': false}}
             WHEN @r_cc IS NULL THEN NULL
             WHEN @irest IS NOT NULL
                  THEN CASE WHEN cx_phone__cc_prefix(@irest) IS NOT NULL
                            THEN {{'cc': cx_phone__cc_prefix(@irest),
                                  'nsn': substr(@irest, length(cx_phone__cc_prefix(@irest)) + 1),
                                  'plain': false}} END
             WHEN starts_with(@d, @r_cc) THEN {_own_country_code_sql()}
             WHEN NOT @plus THEN {{'cc': @r_cc, 'nsn': @d, 'plain': true}}
        END""",
    )
    # A number read without a country code is trunk-stripped with its region's rules; one with
    # a country code with the rules of that code's main region; the final possibility check
    # always uses the latter, as phonenumbers does.
    sid = "CASE WHEN @p.plain THEN @rid ELSE cx_phone__cc_id(@p.cc) END"
    chain.add(
        cid="cx_phone__cc_id(@p.cc)",
        sid=sid,
        f_n="CASE WHEN length(@p.nsn) >= 2 THEN @p.nsn END",
        **_lookup("f_", sid, _PREFIX_FIELDS),
    )
    chain.add(f_npl="cx_phone__prefix_len(@f_n, @f_np_alts, @f_np_re, @f_np_starts)")
    chain.add(n2=f"CASE WHEN @f_npl IS NULL THEN @f_n ELSE {_national_number_sql()} END")
    lengths = ", ".join(_rule(f, "@cid") for f in _LENGTH_FIELDS)
    return chain.result(
        f"""
        CASE WHEN length(@n2) <= {_MAX_NSN_LENGTH}
                  AND cx_phone__len_status(@n2, {lengths}) = 'POSSIBLE'
                  AND {_not_placeholder("@n2", 1)}
             THEN '+' || @p.cc || @n2
        END"""
    )


# Digits a form's placeholder is typed with: a run up or down the keypad ('1234567890',
# '987654321'), which no numbering plan hands out whole.
_RUNS = ("01234567890123456789", "98765432109876543210")


def _not_placeholder(digits: str, at_least: int = 6) -> str:
    """SQL: the digits `digits` are no placeholder: at least `at_least` of them, not one digit
    repeated ('0000000000', '555-555-5555'), not a run ('1234567890'). Checked on all the
    digits written and again on the national number, so '+1 000 000 0000' is one too."""
    runs = " AND ".join(f"NOT contains('{run}', {digits})" for run in _RUNS)
    return (
        f"(length({digits}) >= {at_least} AND replace({digits}, {digits}[1], '') <> '' AND {runs})"
    )


@functools.cache
def toll_free_pattern() -> str:
    """A regular expression an E.164 number matches when it is toll free in its country (the
    metadata's toll-free pattern of each region of its country code): a business's line, as
    800-555-0199 typed into a shop's orders, which no customer holds as their own."""
    patterns: dict[int, set[str]] = {}
    for cc, regions in sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items()):
        for region in regions:
            md = PhoneMetadata.metadata_for_region_or_calling_code(cc, region)
            toll_free = md and md.toll_free and md.toll_free.national_number_pattern
            if toll_free:
                patterns.setdefault(cc, set()).add(toll_free)
    alternatives = "|".join(
        f"{cc}(?:{'|'.join(sorted(found))})" for cc, found in sorted(patterns.items())
    )
    pattern = f"\\+(?:{alternatives})"
    assert "'" not in pattern
    return pattern


def _has_length(mask: str, n: str) -> str:
    # Lengths are at most 17, so any longer string shifts every bit out.
    return f"(({mask} >> least(length({n}), 31)) & 1) = 1"


def _macros() -> list[str]:
    """The phone macros; helpers first, since a macro's body is bound when it is created."""
    macros: list[str] = []

    def add(signature: str, body: str) -> None:
        macros.append(f"CREATE OR REPLACE MACRO {signature} AS\n{body}")

    add(
        "cx_phone__region_id(region)",
        """
        CASE WHEN length(region) = 2 AND upper(region[1]) BETWEEN 'A' AND 'Z'
                  AND upper(region[2]) BETWEEN 'A' AND 'Z'
             THEN getvariable('cx_phone_region_ids')[
                  (ascii(upper(region[1])) - 65) * 26 + ascii(upper(region[2])) - 65 + 1]
        END""",
    )
    add(
        "cx_phone__cc_id(cc)",
        "getvariable('cx_phone_cc_ids')[TRY_CAST(cc AS INTEGER) + 1]",
    )
    # Country codes form a prefix-free set, so the first hit by length is the only one.
    add(
        "cx_phone__cc_prefix(d)",
        """
        CASE WHEN d IS NULL OR d = '' OR d[1] = '0' THEN NULL
             WHEN cx_phone__cc_id(left(d, 1)) IS NOT NULL THEN left(d, 1)
             WHEN length(d) >= 2 AND cx_phone__cc_id(left(d, 2)) IS NOT NULL THEN left(d, 2)
             WHEN length(d) >= 3 AND cx_phone__cc_id(left(d, 3)) IS NOT NULL THEN left(d, 3)
        END""",
    )
    # phonenumbers' _test_number_length for the UNKNOWN type.
    add(
        "cx_phone__len_status(n, possible_mask, local_mask, min_len, max_len)",
        f"""
        CASE WHEN n IS NULL OR possible_mask IS NULL THEN 'INVALID'
             WHEN {_has_length("local_mask", "n")} THEN 'LOCAL'
             WHEN length(n) < min_len THEN 'SHORT'
             WHEN length(n) > max_len THEN 'LONG'
             WHEN {_has_length("possible_mask", "n")} THEN 'POSSIBLE'
             ELSE 'INVALID'
        END""",
    )
    # Whether n matches the national number pattern. The pattern only matches lengths in the
    # metadata's length lists (a libphonenumber build invariant) and strings with one of its
    # starts, so the regex runs only when both leave it open.
    add(
        "cx_phone__viable(n, nn_re, starts, pattern_mask)",
        f"""
        CASE WHEN n IS NULL OR nn_re IS NULL THEN false
             WHEN NOT {_has_length("pattern_mask", "n")} THEN false
             WHEN starts IS NOT NULL
                  AND NOT contains(starts, '|' || left(n, {_START_LENGTH}) || '|')
                  THEN false
             ELSE regexp_full_match(n, nn_re)
        END""",
    )
    # A match can start the string only if one of its starts is a prefix of s (left(s, 0) is
    # '', for patterns that can match nothing).
    could_start = " OR ".join(
        f"contains(starts, '|' || left(s, {i}) || '|')" for i in range(_START_LENGTH + 1)
    )
    # Length of the prefix (international or national) s starts with, NULL when none; an empty
    # match strips nothing, like no match. Expanded alternatives are in backtracking order, so
    # the first that fits is what Python's re.match finds.
    add(
        "cx_phone__prefix_len(s, alts, rx, starts)",
        f"""
        CASE WHEN s IS NULL THEN NULL
             -- One literal ('00', '0') is the common case and needs no list.
             WHEN alts IS NOT NULL AND NOT contains(alts, '|')
                  THEN CASE WHEN starts_with(s, alts) THEN nullif(length(alts), 0) END
             WHEN alts IS NOT NULL
                  THEN nullif(length(list_filter(string_split(alts, '|'),
                                                 lambda cx__a: starts_with(s, cx__a))[1]), 0)
             WHEN rx IS NULL THEN NULL
             WHEN starts IS NOT NULL AND NOT ({could_start}) THEN NULL
             ELSE nullif(length(regexp_extract(s, rx)), 0)
        END""",
    )
    # The number part of free text: up to a second number (',', ';', '|', newline; also the
    # RFC 3966 parameters), without an extension, from the first '+' or digit to the last digit.
    add(
        "cx_phone__number_part(raw)",
        f"""
        regexp_replace(
            regexp_extract(
                regexp_replace(
                    regexp_extract(
                        CASE WHEN length(raw) > {_MAX_INPUT_LENGTH} THEN NULL
                             WHEN strlen(raw) = length(raw) THEN raw
                             -- Any script's digits, and a full-width plus.
                             ELSE replace(cx_ascii_digits(raw), '＋', '+')
                        END,
                        '^[^,;|\\r\\n]*'),
                    '{_EXTENSION}', ''),
                '[+0-9].*'),
            '[^0-9]+$', '')""",
    )
    # The digits match a number no region reads by its last 7 (a local number without its
    # area code). A placeholder has none: too few digits or one digit repeated ('0',
    # '0000000000', '555-555-5555'), as for E.164; their digits made every such row one
    # identity and every two of them agree on a phone.
    add(
        "cx_phone_digits(raw)",
        "list_transform([regexp_replace(cx_phone__number_part(CAST(raw AS VARCHAR)), "
        f"'[^0-9]', '', 'g')], lambda cx__d: CASE WHEN {_not_placeholder('cx__d')} "
        "THEN cx__d END)[1]",
    )
    add("cx_phone_e164(raw, region)", _e164_sql())
    # (The pattern is the metadata's, not user text; none holds a quote.)
    add(
        "cx_phone_toll_free(e164)",
        f"coalesce(regexp_full_match(e164, '{toll_free_pattern()}'), false)",
    )
    return macros


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple[object, ...]]) -> None:
    # One statement with a list parameter per column: executemany costs a round trip per row.
    if rows:
        columns = [list(column) for column in zip(*rows, strict=True)]
        unnests = ", ".join("unnest(?)" for _ in columns)
        con.execute(f"INSERT INTO {table} SELECT {unnests}", columns)


def install(con: duckdb.DuckDBPyConnection) -> None:
    """Create reference data and the SQL macros below on `con` (idempotent: CREATE OR REPLACE).

    Creates the tables ``cx_ref_phone_regions`` and ``cx_ref_phone_country_codes`` from the
    installed ``phonenumbers`` metadata, the session variables the macros read, and the macros
    ``cx_phone_e164(raw, region)`` and ``cx_phone_digits(raw)`` (plus ``cx_phone__*`` helpers).
    The session variables are this connection's; a cursor of it needs its own call.
    """
    digits.install(con)
    con.execute(_CREATE_REGIONS)
    _insert(con, REGIONS_TABLE, _region_rows())
    con.execute(_CREATE_COUNTRY_CODES)
    _insert(con, COUNTRY_CODES_TABLE, _country_code_rows())
    con.execute(_CREATE_RULES)
    for field in _RULE_FIELDS:
        con.execute(
            f"SET VARIABLE cx_phone_{field} = "
            f"(SELECT list(rules.{field} ORDER BY id) FROM {_RULES_TABLE})"
        )
    for kind, slots in (("region", _REGION_SLOTS), ("cc", _COUNTRY_CODE_SLOTS)):
        con.execute(
            f"SET VARIABLE cx_phone_{kind}_ids = ("
            f"SELECT list(id ORDER BY s.slot) FROM range({slots}) AS s(slot) "
            f"LEFT JOIN (SELECT id, slot FROM {_RULES_TABLE} WHERE kind = ?) USING (slot))",
            [kind],
        )
    for sql in _macros():
        con.execute(sql)
