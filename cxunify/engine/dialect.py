"""DuckDB-dialect SQL, as the stages write it, turned into Spark SQL with sqlglot.

The stages write one text of SQL, in DuckDB's dialect. sqlglot translates most of it; what it
cannot, because the two engines name or shape a function differently, is in the table of
rewrites below. Each rewrite says why. Functions Spark lacks (Jaro–Winkler, Damerau–Levenshtein)
are vectorised pandas UDFs the Spark engine registers under the names given here.
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
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise CxunifyError(f"cannot translate SQL for Spark: {exc}") from None
    if len(statements) != 1:
        raise CxunifyError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def to_spark(tree: exp.Expression, variables: Mapping[str, Mapping[Any, Any]]) -> str:
    """Spark SQL for a parsed DuckDB expression or query, after the rewrites below."""
    rewritten = tree.copy().transform(lambda node: _rewrite(node, variables))
    return rewritten.sql(dialect="spark")


def _rewrite(node: exp.Expression, variables: Mapping[str, Mapping[Any, Any]]) -> exp.Expression:
    for kind, rewrite in REWRITES:
        if isinstance(node, kind):
            replaced = rewrite(node, variables)
            if replaced is not None:
                return replaced
    return node


def _function_name(node: exp.Expression) -> str:
    return node.name.lower() if isinstance(node, exp.Anonymous) else ""


def _jaro_winkler(node: exp.Expression, _: Any) -> exp.Expression:
    return exp.Anonymous(this=JARO_WINKLER_UDF, expressions=[node.this, node.expression])


def _anonymous(node: exp.Expression, _: Any) -> exp.Expression | None:
    name = _function_name(node)
    if name == "damerau_levenshtein":
        return exp.Anonymous(this=DAMERAU_LEVENSHTEIN_UDF, expressions=list(node.expressions))
    if name == "list_position":
        # DuckDB answers NULL when the value is absent, Spark's array_position 0.
        found = exp.Anonymous(this="array_position", expressions=list(node.expressions))
        return exp.Nullif(this=found, expression=exp.Literal.number(0))
    return None


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
        return _distinct_sorted_list(node.this, variables, where)
    return None


def _aggregate(function: str, argument: exp.Expression, where: exp.Expression | None) -> Any:
    call = exp.Anonymous(this=function, expressions=[argument])
    return exp.Filter(this=call, expression=where.copy()) if where is not None else call


def _first_ordered(
    node: exp.Expression, _: Any, where: exp.Expression | None = None
) -> exp.Expression | None:
    """``first(x ORDER BY k...)``: Spark's first takes no ORDER BY, so sort the group's
    (keys, x) structs with a comparator that keeps DuckDB's ordering, nulls included."""
    order = node.this
    if not isinstance(order, exp.Order):
        return None
    value = order.this
    keys = [o.this for o in order.expressions]
    fields = [
        exp.PropertyEQ(this=exp.to_identifier(f"k{i}"), expression=k) for i, k in enumerate(keys)
    ]
    fields.append(exp.PropertyEQ(this=exp.to_identifier("v"), expression=value))
    pairs = [part for f in fields for part in (exp.Literal.string(f.name), f.expression)]
    collected = _aggregate(
        "collect_list", exp.Anonymous(this="named_struct", expressions=pairs), where
    )
    comparator = " ".join(
        _compare_clause(f"k{i}", bool(o.args.get("desc")), _nulls_first(o))
        for i, o in enumerate(order.expressions)
    )
    lam = exp.Lambda(
        this=sqlglot.parse_one(f"CASE {comparator} ELSE 0 END", read="spark"),
        expressions=[exp.to_identifier("a"), exp.to_identifier("b")],
    )
    sorted_ = exp.Anonymous(this="array_sort", expressions=[collected, lam])
    return exp.Dot(
        this=exp.Anonymous(this="try_element_at", expressions=[sorted_, exp.Literal.number(1)]),
        expression=exp.to_identifier("v"),
    )


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


def _distinct_sorted_list(
    node: exp.Expression, _: Any, where: exp.Expression | None = None
) -> exp.Expression | None:
    """``list(DISTINCT x ORDER BY x)``: Spark has collect_set, unordered, so sort it.
    (collect_set skips NULLs, as the stages' FILTER clauses do.)"""
    order = node.this
    if not (isinstance(order, exp.Order) and isinstance(order.this, exp.Distinct)):
        return None
    values = order.this.expressions
    keys = [o.this for o in order.expressions]
    if (
        len(values) != 1
        or len(keys) != 1
        or values[0] != keys[0]
        or order.expressions[0].args.get("desc")
    ):
        raise CxunifyError("list(DISTINCT x ORDER BY x) is the only ordered list Spark gets")
    return exp.Anonymous(
        this="array_sort", expressions=[_aggregate("collect_set", values[0], where)]
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
    (exp.Filter, _filtered),
    (exp.First, _first_ordered),
    (exp.ArrayAgg, _distinct_sorted_list),
    (exp.DataType, _data_type),
)
