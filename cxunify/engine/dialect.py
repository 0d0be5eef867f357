"""DuckDB-dialect SQL, as the stages write it, turned into Spark SQL with sqlglot.

The stages write one text of SQL, in DuckDB's dialect. sqlglot translates most of it; what it
cannot, because the two engines name, shape or compute a function differently (ordered
aggregates, sort keys, date boundaries, division, interpolation, rounding), is in the table of
rewrites below, each giving DuckDB's values on Spark and saying why. Functions Spark lacks
(Jaro–Winkler, Damerau–Levenshtein) are vectorised pandas UDFs the Spark engine registers
under the names given here. `tests/test_spark.py` runs each rewrite on both engines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlglot
from sqlglot import exp

from cxunify.errors import CxunifyError

# Names of the UDFs the Spark engine registers for functions Spark does not have.
JARO_WINKLER_UDF = "cx_jaro_winkler"
DAMERAU_LEVENSHTEIN_UDF = "cx_damerau_levenshtein"


def parse(sql: str) -> exp.Expression:
    """Parse one DuckDB statement."""
    try:
        # sqlglot >= 30 types parse() as its base `Expr`; every statement node is an Expression.
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if isinstance(s, exp.Expression)]
    except sqlglot.errors.ParseError as exc:
        raise CxunifyError(f"cannot translate SQL for Spark: {exc}") from None
    if len(statements) != 1:
        raise CxunifyError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def to_spark(tree: exp.Expression, variables: Mapping[str, Mapping[Any, Any]]) -> str:
    """Spark SQL for a parsed DuckDB expression or query, after the rewrites below."""
    return _rewritten(tree, variables).sql(dialect="spark")


def _rewritten(tree: exp.Expression, variables: Mapping[str, Mapping[Any, Any]]) -> Any:
    """A copy of `tree` with every rewrite applied. A rewrite that rebuilds a node from its
    parts rewrites those parts with this too: the walk does not enter a replaced node."""
    return tree.copy().transform(lambda node: _rewrite(node, variables))


def _rewrite(node: exp.Expression, variables: Mapping[str, Mapping[Any, Any]]) -> exp.Expression:
    for kind, rewrite in REWRITES:
        if isinstance(node, kind):
            replaced = rewrite(node, variables)
            if replaced is not None:
                return replaced
    return node


def _function_name(node: exp.Expression) -> str:
    return node.name.lower() if isinstance(node, exp.Anonymous) else ""


def _jaro_winkler(node: exp.Expression, variables: Any) -> exp.Expression:
    return _call(JARO_WINKLER_UDF, [node.this, node.expression], variables)


def _call(name: str, arguments: Sequence[exp.Expression], variables: Any) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=[_rewritten(a, variables) for a in arguments])


def _anonymous(node: exp.Expression, variables: Any) -> exp.Expression | None:
    name = _function_name(node)
    if name == "damerau_levenshtein":
        return _call(DAMERAU_LEVENSHTEIN_UDF, node.expressions, variables)
    if name == "list_position":
        # DuckDB answers NULL when the value is absent, Spark's array_position 0.
        found = _call("array_position", node.expressions, variables)
        return exp.Nullif(this=found, expression=exp.Literal.number(0))
    if name == "create_sort_key":
        return _sort_key(node.expressions, variables)
    if name == "epoch_us":
        # Microseconds since 1970 of a timestamp without time zone, whatever the session's.
        epoch = exp.cast(
            exp.Literal.string("1970-01-01 00:00:00"), "TIMESTAMP_NTZ", dialect="spark"
        )
        return exp.Anonymous(
            this="timestampdiff",
            expressions=[exp.var("MICROSECOND"), epoch, _rewritten(node.expressions[0], variables)],
        )
    return None


def _sort_key(arguments: Sequence[exp.Expression], variables: Any) -> exp.Expression:
    """``create_sort_key(k, 'DESC NULLS LAST', ...)``: DuckDB's binary key that sorts as the
    keys do. Here a struct, which Spark orders field by field (``min_by``, ORDER BY): per key a
    flag that puts NULLs where asked, then the key, negated when descending. A descending key
    must therefore be a number (the stages turn a timestamp into one with ``epoch_us``)."""
    fields: list[exp.Expression] = []
    for i in range(0, len(arguments), 2):
        key, spec = _rewritten(arguments[i], variables), arguments[i + 1]
        if not spec.is_string:
            raise CxunifyError("create_sort_key takes literal orders ('DESC NULLS LAST')")
        order = spec.name.upper()
        is_null = exp.Is(this=exp.Paren(this=key.copy()), expression=exp.null())
        # false sorts before true
        flag = exp.Not(this=is_null) if "NULLS FIRST" in order else is_null
        value = exp.Neg(this=exp.Paren(this=key)) if order.startswith("DESC") else key
        fields += [exp.Literal.string(f"n{i // 2}"), flag, exp.Literal.string(f"k{i // 2}"), value]
    return exp.Anonymous(this="named_struct", expressions=fields)


def _indexed_lambda(node: exp.Expression, variables: Any) -> exp.Expression | None:
    """``list_filter(l, lambda x, i: ...)``: DuckDB counts the index i from 1, Spark from 0."""
    lam = node.expression
    if not (isinstance(lam, exp.Lambda) and len(lam.expressions) == 2):
        return None
    index = lam.expressions[1].name

    def shifted(part: exp.Expression) -> exp.Expression:
        if isinstance(part, exp.Identifier) and part.name == index:
            return exp.Paren(this=exp.Add(this=part.copy(), expression=exp.Literal.number(1)))
        return part

    rebuilt = node.copy()
    rebuilt.set("this", _rewritten(node.this, variables))
    body = _rewritten(lam.this, variables).transform(shifted)
    rebuilt.set("expression", exp.Lambda(this=body, expressions=lam.expressions))
    return rebuilt


def _slice(node: exp.Expression, variables: Any) -> exp.Expression | None:
    """``list[a:b]``: DuckDB's slice, both ends included, is Spark's ``slice(list, a, length)``."""
    if len(node.expressions) != 1 or not isinstance(node.expressions[0], exp.Slice):
        return None
    bounds = node.expressions[0]
    start, end = bounds.this, bounds.expression
    if not (isinstance(start, exp.Literal) and isinstance(end, exp.Literal)):
        raise CxunifyError("Spark takes list slices with literal bounds only ([1:5])")
    length = int(end.name) - int(start.name) + 1
    return _call("slice", [node.this, start, exp.Literal.number(max(length, 0))], variables)


def _full_match(node: exp.Expression, variables: Any) -> exp.Expression:
    """``regexp_full_match``: RLIKE finds a match anywhere, so anchor it (``\\z``: Java's ``$``
    also matches before a final newline)."""
    pattern = node.expression
    if not pattern.is_string:
        raise CxunifyError("regexp_full_match takes a literal pattern on Spark")
    return exp.RegexpLike(
        this=_rewritten(node.this, variables),
        expression=exp.Literal.string(f"^(?:{pattern.name})\\z"),
    )


def _date_diff(node: exp.Expression, variables: Any) -> exp.Expression | None:
    """``date_diff(unit, a, b)`` counts unit boundaries crossed (two timestamps an hour apart
    either side of midnight are a day apart); Spark's counts whole units elapsed."""
    if not node.args.get("date_part_boundary"):
        return None
    unit = node.text("unit").upper()
    start, end = _rewritten(node.expression, variables), _rewritten(node.this, variables)
    if unit == "DAY":
        days = exp.Anonymous(
            this="datediff", expressions=[exp.cast(end, "DATE"), exp.cast(start, "DATE")]
        )
        return exp.cast(days, "BIGINT")  # DuckDB's date_diff is a BIGINT
    if unit == "SECOND":
        truncated = [
            exp.Anonymous(this="date_trunc", expressions=[exp.Literal.string("SECOND"), t])
            for t in (start, end)
        ]
        return exp.Anonymous(this="timestampdiff", expressions=[exp.var("SECOND"), *truncated])
    raise CxunifyError(f"date_diff('{unit.lower()}', ...) has no Spark translation yet")


def _variable_lookup(node: exp.Expression, variables: Mapping[str, Mapping[Any, Any]]) -> Any:
    """``getvariable('name')[key]``: a session MAP in DuckDB, a CASE over its entries here."""
    target = node.this
    if not (isinstance(target, exp.Anonymous) and _function_name(target) == "getvariable"):
        return None
    name = target.expressions[0].name
    if name not in variables:
        raise CxunifyError(f"SQL reads variable '{name}' that was never set")
    key = node.expressions[0]
    # sqlglot turns DuckDB's 1-based list index into Spark's 0-based one ("+ -1"), which is
    # wrong for a MAP lookup: undo it.
    if isinstance(key, exp.Add) and isinstance(key.expression, exp.Neg):
        key = key.this
    key = _rewritten(key, variables)
    case = exp.Case(this=key)
    for k, v in variables[name].items():
        # A bare 0.25 is a DECIMAL in Spark; the weights are DOUBLE, as in DuckDB's MAP.
        value = exp.cast(exp.convert(v), "DOUBLE") if isinstance(v, float) else exp.convert(v)
        case = case.when(exp.convert(k), value)
    return case


def _filtered(node: exp.Expression, variables: Any) -> exp.Expression | None:
    """An aggregate with FILTER whose rewrite wraps it: the FILTER goes to the aggregate inside."""
    where = node.expression
    if isinstance(node.this, exp.First):
        return _first_ordered(node.this, variables, where)
    if isinstance(node.this, exp.ArrayAgg):
        return _ordered_list(node.this, variables, where)
    if isinstance(node.this, exp.Median):
        return _median(node.this, variables, where)
    if isinstance(node.this, exp.ArgMin | exp.ArgMax):
        return _arg_extreme(node.this, variables, where)
    return None


def _arg_extreme(
    node: exp.Expression, variables: Any, where: exp.Expression | None = None
) -> exp.Expression:
    """``arg_min(x, key)`` skips rows where x is NULL; Spark's ``min_by`` returns it."""
    value = _rewritten(node.this, variables)
    present: Any = exp.Not(this=exp.Is(this=value.copy(), expression=exp.null()))
    if where is not None:
        condition = where.this if isinstance(where, exp.Where) else where
        present = exp.and_(exp.Paren(this=_rewritten(condition, variables)), present)
    function = "min_by" if isinstance(node, exp.ArgMin) else "max_by"
    return exp.Filter(
        this=_call(function, [value, node.expression], variables),
        expression=exp.Where(this=present),
    )


def _aggregate(function: str, argument: exp.Expression, where: exp.Expression | None) -> Any:
    call = exp.Anonymous(this=function, expressions=[argument])
    return exp.Filter(this=call, expression=where.copy()) if where is not None else call


def _first_ordered(
    node: exp.Expression, variables: Any, where: exp.Expression | None = None
) -> exp.Expression | None:
    """``first(x ORDER BY k...)``: Spark's first takes no ORDER BY, so sort the group's
    (keys, x) structs with a comparator that keeps DuckDB's ordering, nulls included."""
    order = node.this
    if not isinstance(order, exp.Order):
        return None
    return exp.Dot(
        this=exp.Anonymous(
            this="try_element_at",
            expressions=[_sorted_group(order, variables, where), exp.Literal.number(1)],
        ),
        expression=exp.to_identifier("v"),
    )


def _sorted_group(order: exp.Order, variables: Any, where: exp.Expression | None) -> Any:
    """The group's (keys, v) structs as an array sorted as ``v ORDER BY keys`` would be, with a
    comparator that keeps DuckDB's ordering, nulls included. A NULL ``v`` stays in (its struct
    is not NULL), as in DuckDB's list()."""
    value = _rewritten(order.this, variables)
    keys = [_rewritten(o.this, variables) for o in order.expressions]
    pairs: list[exp.Expression] = []
    for i, key in enumerate(keys):
        pairs += [exp.Literal.string(f"k{i}"), key]
    pairs += [exp.Literal.string("v"), value]
    collected = _aggregate(
        "collect_list",
        exp.Anonymous(this="named_struct", expressions=pairs),
        None if where is None else _rewritten(where, variables),
    )
    comparator = " ".join(
        _compare_clause(f"k{i}", bool(o.args.get("desc")), _nulls_first(o))
        for i, o in enumerate(order.expressions)
    )
    lam = exp.Lambda(
        this=sqlglot.parse_one(f"CASE {comparator} ELSE 0 END", read="spark"),
        expressions=[exp.to_identifier("a"), exp.to_identifier("b")],
    )
    return exp.Anonymous(this="array_sort", expressions=[collected, lam])


def _nulls_first(ordered: exp.Ordered) -> bool:
    # DuckDB sorts NULLs last unless told otherwise, ascending or descending.
    return bool(ordered.args.get("nulls_first"))


def _compare_clause(key: str, desc: bool, nulls_first: bool) -> str:
    a, b = f"a.{key}", f"b.{key}"
    first, last = ("-1", "1") if nulls_first else ("1", "-1")
    less, more = ("1", "-1") if desc else ("-1", "1")
    return (
        f"WHEN {a} IS NULL AND {b} IS NOT NULL THEN {first} "
        f"WHEN {a} IS NOT NULL AND {b} IS NULL THEN {last} "
        f"WHEN {a} < {b} THEN {less} WHEN {a} > {b} THEN {more}"
    )


def _ordered_list(
    node: exp.Expression, variables: Any, where: exp.Expression | None = None
) -> exp.Expression | None:
    """``list(x ORDER BY k...)``: Spark's collect_list keeps no order, so sort the collected
    (keys, x) structs and keep x."""
    order = node.this
    if not isinstance(order, exp.Order):
        return None
    if isinstance(order.this, exp.Distinct):
        return _distinct_sorted_list(order, variables, where)
    struct = exp.to_identifier("s")
    return exp.Anonymous(
        this="transform",
        expressions=[
            _sorted_group(order, variables, where),
            exp.Lambda(
                this=exp.Dot(this=struct.copy(), expression=exp.to_identifier("v")),
                expressions=[struct],
            ),
        ],
    )


def _distinct_sorted_list(
    order: exp.Order, variables: Any, where: exp.Expression | None
) -> exp.Expression:
    """``list(DISTINCT x ORDER BY x)``: Spark has collect_set, unordered, so sort it.
    (collect_set skips NULLs, as the stages' FILTER clauses do.)"""
    values = [_rewritten(v, variables) for v in order.this.expressions]
    keys = [_rewritten(o.this, variables) for o in order.expressions]
    if (
        len(values) != 1
        or len(keys) != 1
        or values[0] != keys[0]
        or order.expressions[0].args.get("desc")
    ):
        raise CxunifyError("list(DISTINCT x ORDER BY x) is the only ordered list Spark gets")
    if where is not None:
        where = _rewritten(where, variables)
    return exp.Anonymous(
        this="array_sort", expressions=[_aggregate("collect_set", values[0], where)]
    )


def _median(
    node: exp.Expression, variables: Any, where: exp.Expression | None = None
) -> exp.Expression:
    """``median(x)`` of numbers: DuckDB interpolates two middle values as ``a * 0.5 + b * 0.5``,
    Spark's percentile as ``a + (b - a) * 0.5``, which differs in the last bit; so take the
    middle values of the sorted group and interpolate as DuckDB does."""
    values = _aggregate(
        "collect_list",
        exp.cast(_rewritten(node.this, variables), "DOUBLE"),
        None if where is None else _rewritten(where, variables),
    )
    template = """CASE WHEN SIZE(v) = 0 THEN NULL
        WHEN SIZE(v) % 2 = 1 THEN ELEMENT_AT(v, CAST((SIZE(v) + 1) DIV 2 AS INT))
        ELSE ELEMENT_AT(v, CAST(SIZE(v) DIV 2 AS INT)) * CAST(0.5 AS DOUBLE)
             + ELEMENT_AT(v, CAST(SIZE(v) DIV 2 + 1 AS INT)) * CAST(0.5 AS DOUBLE) END"""
    sorted_ = exp.Anonymous(this="array_sort", expressions=[values])
    return sqlglot.parse_one(template, read="spark").transform(
        lambda part: sorted_.copy() if isinstance(part, exp.Column) and part.name == "v" else part
    )


def _divide(node: exp.Expression, variables: Any) -> exp.Expression:
    """``a / b`` is a DOUBLE division in DuckDB whatever the operands; Spark divides DECIMALs
    as DECIMALs (another value, another type)."""
    return exp.Div(
        this=exp.cast(_rewritten(node.this, variables), "DOUBLE"),
        expression=_rewritten(node.expression, variables),
    )


# Veltkamp's splitting constant (2^27 + 1): splits a double into two halves whose products
# with a small integer are exact.
_SPLITTER = 134217729


def _round(node: exp.Expression, variables: Any) -> exp.Expression | None:
    """``round(CAST(x AS DOUBLE), n)``: DuckDB rounds the double's exact binary value half
    away from zero (2.675, stored as 2.67499..., gives 2.67); Spark rounds its shortest
    decimal form (2.68). The stages mark a rounded DOUBLE with that CAST; here the value is
    rounded as DuckDB does, in plain double arithmetic (exact on the JVM): x * 10^n is split
    into an integer part and a fraction, and only a fraction of exactly 0.5, which the product
    may have reached by rounding, looks at the product's rounding error (Dekker's product)."""
    value, digits = node.this, node.args.get("decimals")
    is_double = isinstance(value, exp.Cast) and value.to.this == exp.DataType.Type.DOUBLE
    if not is_double or digits is None:
        return None
    if not (isinstance(digits, exp.Literal) and 0 <= int(digits.name) <= 7):
        raise CxunifyError("Spark rounds a DOUBLE to 0-7 literal digits only")
    x = _rewritten(value, variables)
    scale = f"CAST({10 ** int(digits.name)} AS DOUBLE)"
    splitter = f"CAST({_SPLITTER} AS DOUBLE)"
    template = f"""
        SIGN(x) * (FLOOR(ABS(x * {scale})) + CASE
            WHEN ABS(x * {scale}) - FLOOR(ABS(x * {scale})) > 0.5 THEN 1
            WHEN ABS(x * {scale}) - FLOOR(ABS(x * {scale})) < 0.5 THEN 0
            WHEN SIGN(x) * (
                (({splitter} * x - ({splitter} * x - x)) * {scale} - x * {scale})
                + (x - ({splitter} * x - ({splitter} * x - x))) * {scale}) < 0 THEN 0
            ELSE 1 END) / {scale}"""
    rounded = sqlglot.parse_one(template, read="spark")
    return rounded.transform(
        lambda part: x.copy() if isinstance(part, exp.Column) and part.name == "x" else part
    )


def _data_type(node: exp.Expression, _: Any) -> exp.Expression | None:
    # HUGEINT (128-bit) has no Spark type; DECIMAL(38, 0) holds the same counts.
    if node.this == exp.DataType.Type.INT128:
        return exp.DataType.build("DECIMAL(38, 0)")
    return None


REWRITES: Sequence[tuple[type, Callable[[Any, Any], exp.Expression | None]]] = (
    (exp.JarowinklerSimilarity, _jaro_winkler),
    (exp.Anonymous, _anonymous),
    (exp.Bracket, _variable_lookup),
    (exp.Bracket, _slice),
    (exp.ArrayFilter, _indexed_lambda),
    (exp.Transform, _indexed_lambda),
    (exp.RegexpFullMatch, _full_match),
    (exp.DateDiff, _date_diff),
    (exp.Div, _divide),
    (exp.Round, _round),
    (exp.Filter, _filtered),
    (exp.Median, _median),
    (exp.ArgMin, _arg_extreme),
    (exp.ArgMax, _arg_extreme),
    (exp.First, _first_ordered),
    (exp.ArrayAgg, _ordered_list),
    (exp.DataType, _data_type),
)
