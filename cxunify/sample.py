"""Seeded generator of messy customer exports, with the truth of who is who.

The matching engine can only be judged on data whose true identities are known, at the scale
real users bring (millions of rows), and with the faults real exports have: nicknames, typos,
re-registrations, shared households, father and son with one name, twins, junk placeholders,
mixed phone and date formats, and a few lines a CSV reader must reject. Real customer data
cannot be shipped, so this module makes it up: people first, then each export as one view of
them, each with its own habits. `truth.csv` says which person every row belongs to.

Every value is drawn from one `numpy` generator per (seed, stream, block) and built with
vectorised polars expressions, so the output depends on `(people, seed)` only and a few million
people take seconds, not hours. Names, streets, cities and phrases come from the bundled
vocabularies in `cxunify/data/sample/`; nothing describes a real person.
"""

from __future__ import annotations

import csv
import filecmp
import io
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from cxunify.errors import UserError

__all__ = ["SampleSummary", "generate_sample", "true_people"]

Progress = Callable[[str, float], None]

CRM_COLUMNS = (
    "contact_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "street",
    "city",
    "state",
    "zip",
    "country",
    "date_of_birth",
    "created_at",
    "loyalty_id",
)
ORDER_COLUMNS = (
    "order_id",
    "order_date",
    "customer_email",
    "billing_name",
    "phone",
    "amount",
    "currency",
    "category",
    "channel",
    "shipping_zip",
    "card_last4",
)
SOCIAL_KEYS = (
    "handle",
    "platform",
    "display_name",
    "email",
    "followers",
    "posts",
    "last_active",
    "bio_location",
    "post_text",
)
TICKET_COLUMNS = (
    "ticket_id",
    "requester_name",
    "requester_email",
    "phone",
    "created_at",
    "resolved_at",
    "status",
    "channel",
    "csat",
    "subject",
    "body",
)
FILES = ("crm.csv", "orders.csv", "social.ndjson", "tickets.csv")

_START = int(datetime(2022, 1, 1, tzinfo=UTC).timestamp())
_END = int(datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC).timestamp())
_DAY = 86_400
_YEAR = 365.25
_REF_DAY = _END // _DAY
# Customers are adults on the last day of the window.
_LATEST_DOB = _REF_DAY - int(18 * _YEAR) - 1
_ISO = "%Y-%m-%dT%H:%M:%SZ"

# People are generated all at once (cheap: numbers and a few short strings); rows are built
# and written per block of people so memory stays flat at millions of people.
_BLOCK = 200_000

_BRAND = "Larkspur"
_BRAND_TAG = "larkspurshop"
# The shop's own numbers, typed in by staff when the customer gave none.
_SHOP_PHONES = ("8005550199", "8885550142", "2125550100")
_JUNK_PHONES = ("0000000000", "n/a", "1234567890", "555-555-5555", "N/A", "none", "0")
_JUNK_EMAILS = (
    "test@test.com",
    "n/a",
    "none@none.com",
    "noemail@noemail.com",
    "na@na.com",
    "x@x.com",
    "no@email.com",
)
_JUNK_NAMES = ("Guest", "N/A", "Customer", "guest user", "TEST")
_EMAIL_TAGS = ("promo", "shop", "orders", "deals", "news", "larkspur", "2024", "spam", "web")
_COMMON_NAMES = (
    ("John", "Smith", False),
    ("Michael", "Johnson", False),
    ("James", "Williams", False),
    ("David", "Lee", False),
    ("Robert", "Brown", False),
    ("Maria", "García", True),
    ("Jennifer", "Brown", True),
    ("Mary", "Jones", True),
    ("Linda", "Miller", True),
)
_PLATFORMS = ("instagram", "x", "facebook", "tiktok", "linkedin")
_LINKEDIN = 4
_ORDER_CHANNELS = ("web", "mobile_app", "store", "phone", "marketplace")
_STORE = 2
_TICKET_CHANNELS = ("email", "chat", "phone", "web")
_PHONE_CHANNEL = 2
_STATUSES = ("open", "pending", "solved", "closed")
_TONES = ("negative", "neutral", "positive")
_COUNTRIES = ("US", "USA", "United States", "", "us", "U.S.", "United States of America")
# Letters a name can lose its accents to; covers every accented letter in the vocabularies.
_ACCENTED = "áàâäãåéèêëíìîïóòôöõøúùûüñçćčśšşłźżžýÿğıÁÉÍÓÖÚÜÑÇŁŚŻÅØ"
_PLAIN = "aaaaaaeeeeiiiioooooouuuuncccsssszzzyygiAEIOOUUNCLSZAO"
# Exchanges N11 are not dialable, so they never appear in a US number.
_EXCHANGES = np.array([x for x in range(200, 1000) if x % 100 != 11], dtype=np.int64)
_LOCAL_SPACE = len(_EXCHANGES) * 10_000


@dataclass(frozen=True)
class SampleSummary:
    people: int
    files: dict[str, int]  # file name -> data rows written (broken rows included)
    truth_rows: int


# ---------------------------------------------------------------------------------------------
# Vocabularies


@dataclass(frozen=True)
class _Templates:
    """Texts grouped by tone so a row can pick one of its tone with a single gather."""

    table: pl.DataFrame
    start: np.ndarray
    count: np.ndarray

    def pick(self, rng: np.random.Generator, tone: np.ndarray) -> pl.DataFrame:
        u = rng.random(len(tone))
        return self.table[self.start[tone] + (u * self.count[tone]).astype(np.int64)]


@dataclass(frozen=True)
class _Vocab:
    first: pl.Series
    first_alt: pl.Series  # accented spelling where one exists, else the name itself
    first_slug: pl.Series  # as written in emails and handles
    male: np.ndarray
    male_p: np.ndarray
    female: np.ndarray
    female_p: np.ndarray
    nick: pl.Series
    nick_start: np.ndarray
    nick_count: np.ndarray
    nick_slug: pl.Series
    last: pl.Series
    last_slug: pl.Series
    last_p: np.ndarray
    city: pl.Series
    state: pl.Series
    zip3: pl.Series
    area: pl.Series
    city_p: np.ndarray
    street: pl.Series
    stype_full: pl.Series
    stype_abbr: pl.Series
    stype_p: np.ndarray
    category: pl.Series
    category_p: np.ndarray
    category_mu: np.ndarray
    category_sd: np.ndarray
    free_domain: pl.Series
    free_p: np.ndarray
    work_domain: pl.Series
    work_p: np.ndarray
    tickets: _Templates
    signoffs: pl.Series
    posts: _Templates


def _rows(name: str) -> list[dict[str, str]]:
    text = (files("cxunify") / "data" / "sample" / name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _weights(rows: list[dict[str, str]], key: str = "weight") -> np.ndarray:
    w = np.array([float(r[key]) for r in rows])
    return w / w.sum()


def _text(value: str) -> str:
    return value.replace("\\n", "\n")


def _templates(rows: list[dict[str, str]], *cols: str) -> _Templates:
    ordered = sorted(rows, key=lambda r: _TONES.index(r["tone"]))  # stable: file order kept
    counts = np.array([sum(r["tone"] == t for r in rows) for t in _TONES], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    table = pl.DataFrame(
        {c: [_text(r[c]) for r in ordered] for c in cols}, schema=dict.fromkeys(cols, pl.String)
    )
    return _Templates(table, starts, counts)


@cache
def _vocab() -> _Vocab:
    firsts = _rows("first_names.csv")
    female_mask = np.array([r["gender"] == "F" for r in firsts])
    fw = np.array([float(r["weight"]) for r in firsts])
    nick_lists = [[n for n in r["nicknames"].split("|") if n] for r in firsts]
    nick_count = np.array([len(x) for x in nick_lists], dtype=np.int64)
    nick_start = np.concatenate([[0], np.cumsum(nick_count)[:-1]]).astype(np.int64)
    lasts = _rows("surnames.csv")
    cities = _rows("cities.csv")
    stypes = _rows("street_types.csv")
    cats = _rows("categories.csv")
    domains = _rows("email_domains.csv")
    free = [r for r in domains if r["kind"] == "free"]
    work = [r for r in domains if r["kind"] == "company"]
    male = np.flatnonzero(~female_mask)
    female = np.flatnonzero(female_mask)
    return _Vocab(
        first=pl.Series([r["name"] for r in firsts]),
        first_alt=pl.Series([r["accented"] or r["name"] for r in firsts]),
        first_slug=_slugs(pl.Series([r["name"] for r in firsts])),
        male=male,
        male_p=fw[male] / fw[male].sum(),
        female=female,
        female_p=fw[female] / fw[female].sum(),
        nick=pl.Series([n for x in nick_lists for n in x], dtype=pl.String),
        nick_start=nick_start,
        nick_count=nick_count,
        nick_slug=_slugs(pl.Series([n for x in nick_lists for n in x], dtype=pl.String)),
        last=pl.Series([r["name"] for r in lasts]),
        last_slug=_slugs(pl.Series([r["name"] for r in lasts])),
        last_p=_weights(lasts),
        city=pl.Series([r["city"] for r in cities]),
        state=pl.Series([r["state"] for r in cities]),
        zip3=pl.Series([r["zip3"] for r in cities]),
        area=pl.Series([r["area_code"] for r in cities]),
        city_p=_weights(cities),
        street=pl.Series([r["name"] for r in _rows("streets.csv")]),
        stype_full=pl.Series([r["name"] for r in stypes]),
        stype_abbr=pl.Series([r["abbr"] for r in stypes]),
        stype_p=_weights(stypes),
        category=pl.Series([r["name"] for r in cats]),
        category_p=_weights(cats),
        category_mu=np.array([float(r["log_mean"]) for r in cats]),
        category_sd=np.array([float(r["log_sd"]) for r in cats]),
        free_domain=pl.Series([r["domain"] for r in free]),
        free_p=_weights(free),
        work_domain=pl.Series([r["domain"] for r in work]),
        work_p=_weights(work),
        tickets=_templates(_rows("ticket_templates.csv"), "subject", "body"),
        signoffs=pl.Series([_text(r["text"]) for r in _rows("ticket_signoffs.csv")]),
        posts=_templates(_rows("social_templates.csv"), "text"),
    )


# ---------------------------------------------------------------------------------------------
# Vectorised helpers
#
# Every variant of a value (an email written in upper case, a name as "LAST, FIRST", ...) is
# computed only on the rows that drew it and then put back in row order. Polars evaluates
# every branch of a when/then on every row, and nesting them multiplies the work; at millions
# of rows that is the difference between seconds and minutes.


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed & (2**64 - 1), *stream]))


def _cat(rng: np.random.Generator, n: int, p: Sequence[float]) -> np.ndarray:
    """Draw n category codes 0..len(p)-1 with the given (unnormalised) weights."""
    c = np.cumsum(np.asarray(p, dtype=float))
    return np.searchsorted(c / c[-1], rng.random(n), side="right").astype(np.int64)


def _eval(df: pl.DataFrame, idx: np.ndarray | None, expr: pl.Expr) -> pl.Series:
    """expr on the rows idx of df (all rows if None), as text."""
    if idx is not None:
        names = list(dict.fromkeys(expr.meta.root_names()))
        df = df.select(names)[idx] if names else pl.DataFrame({"_i": idx})
    return df.with_columns(expr.alias("_v")).get_column("_v").cast(pl.String)


def _render(
    df: pl.DataFrame, code: np.ndarray, options: Sequence[pl.Expr | str | None]
) -> pl.Series:
    """Per row, options[code] evaluated on df (a string, None for missing, or an expression)."""
    exprs = [o if isinstance(o, pl.Expr) else pl.lit(o, dtype=pl.String) for o in options]
    code = np.asarray(code, dtype=np.int64)
    counts = np.bincount(code, minlength=len(exprs))
    top = int(np.argmax(counts))
    # The usual variant is computed for every row; the rarer ones overwrite their rows.
    out = _eval(df, None, exprs[top])
    for k, expr in enumerate(exprs):
        if k != top and counts[k]:
            idx = np.flatnonzero(code == k)
            out.scatter(idx, _eval(df, idx, expr))
    return out


def _patch(df: pl.DataFrame, col: str, mask: np.ndarray, expr: pl.Expr) -> pl.DataFrame:
    """Replace df[col] by expr on the rows in mask only."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return df
    s = df.get_column(col).clone()
    s.scatter(idx, _eval(df, idx, expr).cast(s.dtype))
    return df.with_columns(s)


def _choice(values: Sequence[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(list(values), dtype=pl.String).gather(idx)


def _digits(rng: np.random.Generator, n: int, low: int, high: int) -> pl.Series:
    return pl.Series(rng.integers(low, high, n)).cast(pl.String)


def _with(df: pl.DataFrame, **cols: np.ndarray | pl.Series) -> pl.DataFrame:
    """Attach per-row draws as columns so expressions can use them."""
    return df.with_columns([pl.Series(k, v) for k, v in cols.items()])


def _where(mask: np.ndarray, a: pl.Series, b: pl.Series) -> pl.Series:
    df = pl.DataFrame({"m": mask, "a": a, "b": b})
    return df.select(pl.when(pl.col("m")).then(pl.col("a")).otherwise(pl.col("b"))).to_series()


def _null_where(s: pl.Series, mask: np.ndarray) -> pl.Series:
    df = pl.DataFrame({"v": s, "m": mask})
    return df.select(pl.when(pl.col("m")).then(None).otherwise(pl.col("v"))).to_series()


def _fmt_ts(expr: pl.Expr, fmt: str = _ISO) -> pl.Expr:
    return pl.from_epoch(expr, time_unit="s").dt.strftime(fmt)


def _ascii(expr: pl.Expr) -> pl.Expr:
    return expr.str.replace_many(list(_ACCENTED), list(_PLAIN))


def _slug(expr: pl.Expr) -> pl.Expr:
    """Lower-case ASCII letters and digits only: what a name becomes in an email or handle."""
    return _ascii(expr).str.to_lowercase().str.replace_all(r"[^a-z0-9]", "")


def _slugs(s: pl.Series) -> pl.Series:
    return pl.DataFrame({"s": s}).select(_slug(pl.col("s"))).to_series()


def _unique(
    values: pl.Series,
    rng: np.random.Generator,
    *,
    scope: pl.Series | None = None,
    fold_dots: bool = False,
) -> pl.Series:
    """Append digits to later repeats until values are distinct within their scope.

    The first occurrence keeps its value. With fold_dots, values that differ only by dots are
    the same (Gmail delivers "j.doe" and "jdoe" to one mailbox).
    """
    n = len(values)
    df = pl.DataFrame(
        {
            "v": values,
            "s": scope if scope is not None else pl.repeat("", n, dtype=pl.String, eager=True),
        }
    )
    bare = pl.col("v").str.replace_all(".", "", literal=True) if fold_dots else pl.col("v")
    df = df.with_columns(k=bare + pl.lit("@") + pl.col("s"))
    for _ in range(100):
        dup = df.select(~pl.col("k").is_first_distinct()).to_series().to_numpy()
        if not dup.any():
            return df.get_column("v")
        df = _with(df, _d=_digits(rng, n, 1, 10_000))
        df = _patch(df, "v", dup, pl.col("v") + pl.col("_d"))
        df = _patch(df, "k", dup, bare + pl.lit("@") + pl.col("s")).drop("_d")
    raise RuntimeError("could not make values unique")  # pragma: no cover


def _affine(g: np.ndarray, space: int, rng: np.random.Generator) -> np.ndarray:
    """A scrambled but collision-free mapping of distinct ints below `space` into `space`."""
    while True:
        a = int(rng.integers(space // 3, space))
        if np.gcd(a, space) == 1:
            break
    b = int(rng.integers(0, space))
    return (a * (g % space) + b) % space


def _local_number(local: np.ndarray) -> pl.Series:
    exch = _EXCHANGES[local // 10_000]
    return pl.Series(exch).cast(pl.String) + pl.Series(local % 10_000).cast(pl.String).str.zfill(4)


def _noise(
    df: pl.DataFrame,
    col: str,
    rng: np.random.Generator,
    *,
    typo: float | np.ndarray = 0.05,
    case: float = 0.03,
    space: float = 0.015,
    strip_accents: float = 0.25,
) -> pl.DataFrame:
    """Damage a name column the way people and systems do.

    One edit (transposition, deletion, substitution or doubled letter) never touches the first
    letter, so blocking on it stays fair; accents are dropped as ASCII-only systems do; case
    and stray whitespace come from manual entry.
    """
    n = df.height
    df = _patch(df, col, rng.random(n) < strip_accents, _ascii(pl.col(col)))
    df = _with(
        df,
        _nop=rng.integers(0, 4, n),
        _npu=rng.random(n),
        _nch=_choice("abcdefghijklmnopqrstuvwxyz", rng.integers(0, 26, n)),
    )
    s = pl.col(col)
    length = s.str.len_chars()
    pos = (1 + (pl.col("_npu") * (length - 2).clip(lower_bound=1)).floor()).cast(pl.Int64)
    head = s.str.slice(0, pos)
    typoed = _pick(
        pl.col("_nop"),
        [
            pl.concat_str(
                [head, s.str.slice(pos + 1, 1), s.str.slice(pos, 1), s.str.slice(pos + 2)]
            ),
            pl.concat_str([head, s.str.slice(pos + 1)]),
            pl.concat_str([head, pl.col("_nch"), s.str.slice(pos + 1)]),
            pl.concat_str([s.str.slice(0, pos + 1), s.str.slice(pos, 1), s.str.slice(pos + 1)]),
        ],
    )
    df = _patch(
        df,
        col,
        rng.random(n) < np.broadcast_to(typo, (n,)),
        pl.when(length >= 3).then(typoed).otherwise(s),
    )
    c = _cat(rng, n, [1 - case, case * 0.6, case * 0.4])
    df = _patch(df, col, c == 1, s.str.to_uppercase())
    df = _patch(df, col, c == 2, s.str.to_lowercase())
    w = _cat(rng, n, [1 - space, space * 0.4, space * 0.3, space * 0.3])
    df = _patch(df, col, w == 1, pl.lit(" ") + s)
    df = _patch(df, col, w == 2, s + pl.lit(" "))
    df = _patch(df, col, w == 3, pl.lit("  ") + s + pl.lit(" "))
    return df.drop("_nop", "_npu", "_nch")


def _pick(sel: pl.Expr, options: Sequence[pl.Expr]) -> pl.Expr:
    """options[sel] per row, as one expression (for small subsets only, see _render)."""
    expr = options[-1]
    for i in range(len(options) - 2, -1, -1):
        expr = pl.when(sel == i).then(options[i]).otherwise(expr)
    return expr


def _phone_formats(d: pl.Expr) -> list[pl.Expr]:
    a, e, x = d.str.slice(0, 3), d.str.slice(3, 3), d.str.slice(6, 4)
    return [
        pl.concat_str([pl.lit("("), a, pl.lit(") "), e, pl.lit("-"), x]),
        pl.concat_str([a, e, x], separator="-"),
        pl.concat_str([a, e, x], separator="."),
        d,
        pl.concat_str([pl.lit("+1 ("), a, pl.lit(") "), e, pl.lit("-"), x]),
        pl.concat_str([pl.lit("1-"), a, pl.lit("-"), e, pl.lit("-"), x]),
        pl.concat_str([pl.lit("+1"), d]),
        pl.concat_str([a, e, x], separator=" "),
    ]


_PHONE_STYLES = (30, 20, 10, 15, 8, 5, 7, 5)


# ---------------------------------------------------------------------------------------------
# People


def _people(n: int, seed: int, v: _Vocab) -> pl.DataFrame:
    """Everyone, with every fact any export may show about them."""
    rng = _rng(seed, 0)
    gid = np.arange(n, dtype=np.int64)

    # Households: most people live alone; the rest share address, surname and a landline, which
    # makes them the nearest non-matches a matcher will meet.
    sizes = _cat(rng, n, [0.6, 0.22, 0.1, 0.08]) + 1
    ends = np.cumsum(sizes)
    h = int(np.searchsorted(ends, n)) + 1
    sizes = sizes[:h].copy()
    sizes[-1] -= int(ends[h - 1]) - n
    ends = np.cumsum(sizes)
    starts = ends - sizes
    hh = np.repeat(np.arange(h), sizes)
    start = starts[hh]
    rank = gid - start
    hsize = sizes[hh]
    twins_hh = (sizes >= 3) & (rng.random(h) < 0.25)
    twins = twins_hh[hh]
    # With twins in a three-person household the second person is a twin, not a partner.
    role = np.where(rank == 0, 0, np.where((rank == 1) & ~(twins & (hsize == 3)), 1, 2))

    head_female = rng.random(h) < 0.5
    female = np.where(
        role == 0,
        head_female[hh],
        np.where(role == 1, head_female[hh] ^ (rng.random(n) < 0.92), rng.random(n) < 0.5),
    )

    age = np.clip(rng.normal(44, 15, n), 19, 88)
    dob = (_REF_DAY - age * _YEAR - rng.random(n) * 365).astype(np.int64)
    head_dob = dob[start]
    dob = np.where(role == 1, head_dob + (rng.normal(0, 4, n) * _YEAR).astype(np.int64), dob)
    child = head_dob + (rng.uniform(22, 38, n) * _YEAR).astype(np.int64)
    dob = np.where(role == 2, child, dob)
    # Too young to be a customer: an adult child of a young parent, spread over a decade.
    young = _LATEST_DOB - (rng.random(n) * 10 * _YEAR).astype(np.int64)
    dob = np.where(dob > _LATEST_DOB, young, dob)
    age = (_REF_DAY - dob) / _YEAR
    twin2 = starts[twins_hh] + sizes[twins_hh] - 1
    dob[twin2] = dob[twin2 - 1]
    female[twin2] = np.where(rng.random(len(twin2)) < 0.6, female[twin2 - 1], female[twin2])

    def draw_first(fem: np.ndarray) -> np.ndarray:
        k = len(fem)
        return np.where(
            fem, rng.choice(v.female, size=k, p=v.female_p), rng.choice(v.male, size=k, p=v.male_p)
        )

    first = draw_first(female)
    # Twins get different first names: that is all that tells them apart.
    for _ in range(50):
        same = np.flatnonzero(first[twin2] == first[twin2 - 1])
        if not len(same):
            break
        first[twin2[same]] = draw_first(female[twin2[same]])
    # Father and son with the same name and address, told apart by Jr/Sr and the dob only.
    suffix = np.zeros(n, dtype=np.int64)
    junior = np.flatnonzero(
        (role == 2) & (rank == 2) & ~twins & ~female & ~female[start] & (rng.random(n) < 0.3)
    )
    first[junior] = first[start[junior]]
    suffix[junior] = 1
    suffix[start[junior]] = 2

    last = rng.choice(len(v.last), size=n, p=v.last_p)
    share = rng.random(n) < np.select([role == 1, role == 2], [0.85, 0.93], 0.0)
    last = np.where(share, last[start], last)
    # Married women may have registered under their maiden name before.
    maiden = np.where(
        female & (age > 24) & (((role == 1) & share) | (rng.random(n) < 0.06)),
        rng.choice(len(v.last), size=n, p=v.last_p),
        -1,
    )
    maiden = np.where(maiden == last, -1, maiden)

    # Many unrelated people share the most common names, in different cities.
    first_list, last_list = v.first.to_list(), v.last.to_list()
    combo_first = np.array([first_list.index(c[0]) for c in _COMMON_NAMES])
    combo_last = np.array([last_list.index(c[1]) for c in _COMMON_NAMES])
    combo_female = np.array([c[2] for c in _COMMON_NAMES])
    combo = rng.integers(0, len(_COMMON_NAMES), n)
    common = (hsize == 1) & (rng.random(n) < 0.004) & (combo_female[combo] == female)
    first = np.where(common, combo_first[combo], first)
    last = np.where(common, combo_last[combo], last)

    nick_n = v.nick_count[first]
    nick_idx = v.nick_start[first] + (rng.random(n) * np.maximum(nick_n, 1)).astype(np.int64)
    nick_idx = np.minimum(nick_idx, len(v.nick) - 1)
    # People with an accented name write it either way; the other spelling is the variant.
    accent_canon = rng.random(n) < 0.5
    first_s = v.first.gather(first)
    alt_s = v.first_alt.gather(first)

    # Addresses: one per household, plus a later one for people who move.
    def address(k: int) -> pl.DataFrame:
        city = rng.choice(len(v.city), size=k, p=v.city_p)
        stype = rng.choice(len(v.stype_full), size=k, p=v.stype_p)
        letter = _choice(("", "", "", "A", "B", "C", "D"), rng.integers(0, 7, k))
        return pl.DataFrame(
            {
                "street_num": pl.Series((10 ** rng.uniform(0, 4, k)).astype(np.int64)).cast(
                    pl.String
                ),
                "street": v.street.gather(rng.integers(0, len(v.street), k)),
                "stype_full": v.stype_full.gather(stype),
                "stype_abbr": v.stype_abbr.gather(stype),
                "unit": _null_where(_digits(rng, k, 1, 40) + letter, rng.random(k) >= 0.18),
                "city_i": city,
                "city": v.city.gather(city),
                "state": v.state.gather(city),
                "zip5": v.zip3.gather(city) + _digits(rng, k, 0, 100).str.zfill(2),
                "zip4": _digits(rng, k, 1, 10_000).str.zfill(4),
            }
        )

    home_h = address(h)
    home = home_h[hh]
    moved = rng.random(n) < 0.12
    movers = np.flatnonzero(moved)
    new = address(len(movers))
    # Half of movers stay in town.
    stay = pl.Series(rng.random(len(movers)) < 0.5)
    before = home[movers]
    new = new.with_columns(
        [
            pl.when(stay).then(before[c]).otherwise(new[c]).alias(c)
            for c in ("city_i", "city", "state")
        ]
        + [
            pl.when(stay)
            .then(before["zip5"].str.slice(0, 3) + new["zip5"].str.slice(3))
            .otherwise(new["zip5"])
            .alias("zip5")
        ]
    )
    # Everyone gets m_* columns; for those who never move they repeat the home address.
    where = np.arange(n)
    where[movers] = n + np.arange(len(movers))
    new = pl.concat([home, new])[where]
    t0 = _START + (rng.random(n) * 0.85 * (_END - _START)).astype(np.int64)
    move_t = t0 + (rng.uniform(0.2, 0.9, n) * (_END - t0)).astype(np.int64)

    # Phones: a mobile per person and a landline per household, all distinct because their
    # seven-digit local parts are one scrambled permutation of person and household numbers
    # (distinct up to ~5 million people plus households). People keep their mobile when they
    # move, so a fifth carry another city's area code.
    numbers = _local_number(_affine(np.arange(n + h, dtype=np.int64), _LOCAL_SPACE, rng))
    city_i = home["city_i"].to_numpy()
    area_city = np.where(rng.random(n) < 0.8, city_i, rng.choice(len(v.city), n, p=v.city_p))
    mobile = v.area.gather(area_city) + numbers.slice(0, n)
    has_land = rng.random(h) < np.where(sizes > 1, 0.4, 0.22)
    landline = v.area.gather(home_h["city_i"]) + numbers.slice(n)
    landline = _null_where(landline, ~has_land).gather(hh)

    # Emails.
    fa = v.first_slug.gather(first)
    la = v.last_slug.gather(last)
    na = _where(nick_n > 0, v.nick_slug.gather(nick_idx), fa)
    # The two-digit birth year people put in addresses ("jsmith84").
    yy = pl.Series(((1970 + np.floor(dob / _YEAR)) % 100).astype(np.int64))
    yy = yy.cast(pl.String).str.zfill(2)
    names = pl.DataFrame({"f": fa, "l": la, "k": na, "y": yy})
    f, lc, k, y = pl.col("f"), pl.col("l"), pl.col("k"), pl.col("y")

    def local(style: np.ndarray) -> pl.Series:
        df = _with(names, d2=_digits(rng, n, 1, 100), d3=_digits(rng, n, 10, 1000))
        return _render(
            df,
            style,
            [
                f + pl.lit(".") + lc,
                f.str.slice(0, 1) + lc,
                f + pl.lit("_") + lc + pl.col("d3"),
                k + pl.col("d2"),
                f + lc,
                f + pl.lit(".") + lc + y,
                lc + pl.lit(".") + f,
                f + lc.str.slice(0, 1) + pl.col("d3"),
                f + pl.col("d2"),
            ],
        )

    styles = (25, 15, 10, 8, 12, 8, 5, 7, 10)
    p_style = _cat(rng, n, styles)
    a_style = (p_style + 1 + rng.integers(0, len(styles) - 1, n)) % len(styles)
    p_local = local(p_style)
    a_local = local(a_style)

    def domains(k: int, work_share: float) -> pl.Series:
        return _where(
            rng.random(k) < work_share,
            v.work_domain.gather(rng.choice(len(v.work_domain), k, p=v.work_p)),
            v.free_domain.gather(rng.choice(len(v.free_domain), k, p=v.free_p)),
        )

    p_domain = domains(n, 0.07)
    a_domain = domains(n, 0.45)
    has_alt = rng.random(n) < 0.4
    # A shared family mailbox is a trap: several people, one email.
    fam = (sizes > 1) & (rng.random(h) < 0.25)
    f_local_h = _render(
        pl.DataFrame({"l": la.gather(starts), "d": _digits(rng, h, 1, 100)}),
        rng.integers(0, 3, h),
        [
            pl.col("l") + pl.lit("family"),
            pl.lit("the") + pl.col("l") + pl.lit("s"),
            pl.col("l") + pl.lit("house") + pl.col("d"),
        ],
    )
    f_domain_h = domains(h, 0.0)

    # Mailboxes are unique, also after the dots Gmail ignores; collisions get digits.
    n_alt = int(has_alt.sum())
    pool_local = _unique(
        pl.concat([p_local, a_local.filter(has_alt), f_local_h.filter(fam)]),
        rng,
        scope=pl.concat([p_domain, a_domain.filter(has_alt), f_domain_h.filter(fam)]),
        fold_dots=True,
    )
    a_local = pl.repeat(None, n, dtype=pl.String, eager=True)
    a_local.scatter(np.flatnonzero(has_alt), pool_local.slice(n, n_alt))
    f_local_h = pl.repeat(None, h, dtype=pl.String, eager=True)
    f_local_h.scatter(np.flatnonzero(fam), pool_local.slice(n + n_alt))

    card2 = np.where(rng.random(n) < 0.35, rng.integers(0, 10_000, n), -1)
    loyalty = pl.Series(_affine(gid, 90_000_000, rng) + 10_000_000).cast(pl.String)

    buyer = rng.random(n) < 0.65
    # Most buyers order a few times; a tenth are regulars with a long tail.
    whale = rng.random(n) < 0.1
    n_orders = np.where(whale, rng.geometric(0.1, n), rng.geometric(0.3, n))
    n_orders = np.where(buyer, np.minimum(n_orders, 40), 0)
    has_crm = rng.random(n) < 0.85
    n_dup = np.where(has_crm & (rng.random(n) < 0.075), 1 + (rng.random(n) < 0.1), 0)
    married_dup = (maiden >= 0) & (n_dup > 0) & (rng.random(n) < 0.7)
    n_social = np.where(rng.random(n) < 0.35, 1 + (rng.random(n) < 0.3), 0)
    n_tickets = np.where(rng.random(n) < 0.25, _cat(rng, n, [0.6, 0.25, 0.1, 0.05]) + 1, 0)

    people = pl.DataFrame(
        {
            "pid": "P" + pl.Series(gid + 1).cast(pl.String).str.zfill(8),
            "female": female,
            "first": _where(accent_canon, alt_s, first_s),
            "first_alt": _where(accent_canon, first_s, alt_s),
            "nick": _null_where(v.nick.gather(nick_idx), nick_n == 0),
            "last": v.last.gather(last),
            "maiden": _null_where(v.last.gather(np.maximum(maiden, 0)), maiden < 0),
            "suffix": _choice(("", "Jr", "Sr"), suffix),
            "s_first": fa,
            "s_last": la,
            "s_nick": na,
            "mi": _choice("ABCDEFGHJKLMNPRSTW", rng.integers(0, 18, n)),
            "dob": dob,
            "t0": t0,
            "moved": moved,
            "move_t": move_t,
            "mobile": mobile,
            "landline": landline,
            "e_local": pool_local.slice(0, n),
            "e_domain": p_domain,
            "a_local": a_local,
            "a_domain": _null_where(a_domain, ~has_alt),
            "f_local": f_local_h.gather(hh),
            "f_domain": _null_where(f_domain_h, ~fam).gather(hh),
            "card1": pl.Series(rng.integers(0, 10_000, n)).cast(pl.String).str.zfill(4),
            "card2": _null_where(pl.Series(card2).cast(pl.String).str.zfill(4), card2 < 0),
            "loyalty": _null_where("LY" + loyalty, rng.random(n) >= 0.45),
            "currency": _choice(("USD", "EUR", "GBP"), _cat(rng, n, [95.5, 2.5, 2.0])),
            "fav_cat": rng.choice(len(v.category), n, p=v.category_p),
            "has_crm": has_crm,
            "n_dup": n_dup,
            "married_dup": married_dup,
            "n_orders": n_orders,
            "n_social": n_social,
            "n_tickets": n_tickets,
        }
    )
    home = home.drop("city_i").rename(lambda c: f"h_{c}")
    new = new.drop("city_i").rename(lambda c: f"m_{c}")
    return pl.concat([people, home, new], how="horizontal")


# ---------------------------------------------------------------------------------------------
# Row-level renderings shared by the exports


def _pick_mailbox(df: pl.DataFrame, use: np.ndarray) -> pl.DataFrame:
    """Columns loc/dom from the primary (0), alternative (1) or family (2) mailbox."""
    use = np.where((use == 1) & df["a_local"].is_null().to_numpy(), 0, use)
    use = np.where((use == 2) & df["f_local"].is_null().to_numpy(), 0, use)
    return df.with_columns(
        loc=_render(df, use, [pl.col("e_local"), pl.col("a_local"), pl.col("f_local")]),
        dom=_render(df, use, [pl.col("e_domain"), pl.col("a_domain"), pl.col("f_domain")]),
    )


def _email(df: pl.DataFrame, rng: np.random.Generator, code: np.ndarray) -> pl.Series:
    """The mailbox in columns loc/dom as a row shows it; `code` picks the variant.

    0 as is, 1 upper case, 2 +tag, 3 Gmail dots added or removed, 4 capitalised, 5 padded with
    spaces, 6 a junk placeholder, 7 missing.
    """
    n = df.height
    df = _with(
        df,
        _etag=_choice(_EMAIL_TAGS, rng.integers(0, len(_EMAIL_TAGS), n)),
        _epu=rng.random(n),
        _ejunk=_choice(_JUNK_EMAILS, rng.integers(0, len(_JUNK_EMAILS), n)),
    )
    loc, dom = pl.col("loc"), pl.col("dom")
    plain = loc + pl.lit("@") + dom
    pos = 1 + (pl.col("_epu") * (loc.str.len_chars() - 1).clip(lower_bound=1)).floor()
    pos = pos.cast(pl.Int64)
    dotted = (
        pl.when(loc.str.contains(".", literal=True))
        .then(loc.str.replace_all(".", "", literal=True))
        .otherwise(loc.str.slice(0, pos) + pl.lit(".") + loc.str.slice(pos))
    )
    # Only Gmail ignores dots, so other domains keep the address as is.
    code = np.where((code == 3) & (df["dom"] != "gmail.com").to_numpy(), 0, code)
    return _render(
        df,
        code,
        [
            plain,
            plain.str.to_uppercase(),
            loc + pl.lit("+") + pl.col("_etag") + pl.lit("@") + dom,
            dotted + pl.lit("@") + dom,
            pl.concat_str(
                [
                    loc.str.slice(0, 1).str.to_uppercase(),
                    loc.str.slice(1),
                    pl.lit("@"),
                    dom.str.slice(0, 1).str.to_uppercase(),
                    dom.str.slice(1),
                ]
            ),
            pl.lit(" ") + plain + pl.lit(" "),
            pl.col("_ejunk"),
            None,
        ],
    )


def _phone_col(df: pl.DataFrame, rng: np.random.Generator, p: Sequence[float]) -> pl.Series:
    """Mobile, landline, missing, the shop's number or junk (weighed by p), in any format."""
    n = df.height
    source = _cat(rng, n, p)
    source = np.where((source == 1) & df["landline"].is_null().to_numpy(), 0, source)
    df = _with(
        df,
        _pshop=_choice(_SHOP_PHONES, rng.integers(0, len(_SHOP_PHONES), n)),
        _pjunk=_choice(_JUNK_PHONES, rng.integers(0, len(_JUNK_PHONES), n)),
    )
    df = df.with_columns(
        _pd=_render(
            df,
            np.minimum(source, 3),
            [pl.col("mobile"), pl.col("landline"), None, pl.col("_pshop")],
        )
    )
    style = _cat(rng, n, _PHONE_STYLES)
    code = np.select(
        [source == 2, source == 4], [len(_PHONE_STYLES), len(_PHONE_STYLES) + 1], style
    )
    return _render(df, code, [*_phone_formats(pl.col("_pd")), None, pl.col("_pjunk")])


_ADDRESS = (
    "street_num",
    "street",
    "stype_full",
    "stype_abbr",
    "unit",
    "city",
    "state",
    "zip5",
    "zip4",
)


def _moved(*fields: str) -> list[str]:
    return [f"{w}_{c}" for w in ("h", "m") for c in fields]


def _address(df: pl.DataFrame, new: np.ndarray) -> pl.DataFrame:
    """Columns a_* with the home address, or the later one where `new` says the person moved."""
    df = _with(df, _new=new)
    return df.with_columns(
        [
            pl.when(pl.col("_new"))
            .then(pl.col(f"m_{c}"))
            .otherwise(pl.col(f"h_{c}"))
            .alias(f"a_{c}")
            for c in _ADDRESS
            if f"h_{c}" in df.columns
        ]
    )


def _street(df: pl.DataFrame, rng: np.random.Generator) -> pl.Series:
    n = df.height
    kind = _render(
        df,
        _cat(rng, n, [40, 45, 15]),
        [
            pl.col("a_stype_full"),
            pl.col("a_stype_abbr"),
            pl.col("a_stype_abbr") + pl.lit("."),
        ],
    )
    unit = pl.col("a_unit")
    apt_code = np.where(df["a_unit"].is_null().to_numpy(), 0, 1 + _cat(rng, n, [50, 15, 20, 15]))
    apt = _render(
        df,
        apt_code,
        [
            "",
            pl.lit(" Apt ") + unit,
            pl.lit(", Apt ") + unit,
            pl.lit(" #") + unit,
            pl.lit(" Unit ") + unit,
        ],
    )
    df = _with(df, _kind=kind, _apt=apt)
    df = df.with_columns(
        _line=pl.concat_str(
            [
                pl.col("a_street_num"),
                pl.lit(" "),
                pl.col("a_street"),
                pl.lit(" "),
                pl.col("_kind"),
                pl.col("_apt"),
            ]
        )
    )
    line = pl.col("_line")
    return _render(
        df, _cat(rng, n, [93, 5, 2]), [line, line.str.to_uppercase(), line.str.to_lowercase()]
    )


def _zip(df: pl.DataFrame, rng: np.random.Generator, p: Sequence[float]) -> pl.Series:
    """ZIP, ZIP+4, or a ZIP that went through a spreadsheet and lost its leading zero."""
    z = pl.col("a_zip5")
    return _render(
        df,
        _cat(rng, df.height, p),
        [
            z,
            z + pl.lit("-") + pl.col("a_zip4"),
            z.str.strip_chars_start("0"),
        ],
    )


def _full_name(
    df: pl.DataFrame,
    rng: np.random.Generator,
    weights: Sequence[float],
    *,
    strip_accents: float = 0.25,
    typo: float = 0.05,
) -> pl.DataFrame:
    """Column `_name`: the person's name written one of the ways listed below."""
    n = df.height
    accent = rng.random(n) < 0.3
    df = df.with_columns(
        fn=_render(df, accent.astype(np.int64), [pl.col("first"), pl.col("first_alt")]),
        ln=pl.col("last"),
    )
    df = _noise(df, "fn", rng, typo=typo, case=0, space=0, strip_accents=strip_accents)
    df = _noise(df, "ln", rng, typo=typo, case=0, space=0, strip_accents=strip_accents)
    suffix = pl.col("suffix")
    sfx_code = np.where((df["suffix"] == "").to_numpy(), 0, _cat(rng, n, [50, 20, 20, 10]))
    title_code = np.where(
        rng.random(n) < 0.2, 0, np.where(~df["female"].to_numpy(), 1, 2 + (rng.random(n) < 0.5))
    )
    df = df.with_columns(
        _sfx=_render(
            df,
            sfx_code,
            [
                "",
                pl.lit(" ") + suffix,
                pl.lit(" ") + suffix + pl.lit("."),
                pl.lit(", ") + suffix + pl.lit("."),
            ],
        ),
        _title=_choice(("Dr.", "Mr.", "Ms.", "Mrs."), title_code),
        _junk=_choice(_JUNK_NAMES, rng.integers(0, len(_JUNK_NAMES), n)),
        _nk=pl.col("nick").fill_null(pl.col("fn")),
    )
    fn, ln, mi, nk, sfx = pl.col("fn"), pl.col("ln"), pl.col("mi"), pl.col("_nk"), pl.col("_sfx")
    sp = pl.lit(" ")
    return df.with_columns(
        _name=_render(
            df,
            _cat(rng, n, weights),
            [
                pl.concat_str([fn, sp, ln, sfx]),  # 0 First Last
                pl.concat_str([ln, pl.lit(", "), fn]).str.to_uppercase(),  # 1 LAST, FIRST
                pl.concat_str([pl.col("_title"), sp, fn, sp, ln, sfx]),  # 2 Dr. First Last
                pl.concat_str([nk, sp, ln, sfx]),  # 3 Nick Last
                pl.concat_str([fn, sp, mi, pl.lit(". "), ln, sfx]),  # 4 First M. Last
                pl.concat_str([fn.str.slice(0, 1), pl.lit(". "), ln]),  # 5 F. Last
                pl.concat_str([fn, sp, ln, sfx]).str.to_uppercase(),  # 6 FIRST LAST
                pl.concat_str([fn, sp, ln]).str.to_lowercase(),  # 7 first last
                pl.concat_str([ln, sp, fn]),  # 8 Last First
                pl.col("_junk"),  # 9 junk
                fn,  # 10 First
                nk,  # 11 Nick
                pl.concat_str([fn, sp, ln.str.slice(0, 1), pl.lit(".")]),  # 12 First L.
                pl.concat_str([ln, pl.lit(", "), fn]),  # 13 Last, First
            ],
        )
    )


def _gather(
    p: pl.DataFrame, counts: np.ndarray, cols: Sequence[str]
) -> tuple[pl.DataFrame, np.ndarray]:
    pi = np.repeat(np.arange(p.height), counts)
    return p.select(cols)[pi], pi


_PERSON = (
    "pid",
    "female",
    "first",
    "first_alt",
    "nick",
    "last",
    "maiden",
    "suffix",
    "mi",
    "mobile",
    "landline",
    "e_local",
    "e_domain",
    "a_local",
    "a_domain",
    "f_local",
    "f_domain",
    "t0",
    "moved",
    "move_t",
)
_HOME = tuple(_moved(*_ADDRESS))


# ---------------------------------------------------------------------------------------------
# The exports


def _crm(p: pl.DataFrame, rng: np.random.Generator, v: _Vocab) -> pl.DataFrame:
    """Contacts: one per registered person, plus re-registrations that drifted from it."""
    base = np.flatnonzero(p["has_crm"].to_numpy())
    dups = np.repeat(np.arange(p.height), p["n_dup"].to_numpy())
    pi = np.concatenate([base, dups])
    m = len(pi)
    is_dup = np.arange(m) >= len(base)
    first_dup = np.zeros(m, dtype=bool)
    if len(dups):
        first_dup[len(base) :] = np.r_[True, dups[1:] != dups[:-1]]
    r = p.select([*_PERSON, *_HOME, "dob", "loyalty", "married_dup"])[pi]
    married = r["married_dup"].to_numpy()
    t0 = r["t0"].to_numpy()
    move_t = r["move_t"].to_numpy()

    # A re-registration differs from the first record in one or more ways.
    nick = np.where(is_dup, rng.random(m) < 0.35, rng.random(m) < 0.03)
    nick &= r["nick"].is_not_null().to_numpy()
    typo_first = np.where(is_dup & (rng.random(m) < 0.15), 1.0, 0.04)
    typo_last = np.where(is_dup & (rng.random(m) < 0.15), 1.0, 0.04)
    alt = is_dup & (rng.random(m) < 0.5)
    recase = is_dup & (rng.random(m) < 0.25)
    move = is_dup & r["moved"].to_numpy() & (rng.random(m) < 0.75)
    # The first record kept the maiden name; the re-registration came after the wedding.
    old_surname = ~is_dup & married
    keep_loyalty = ~is_dup | (rng.random(m) < 0.25)
    created = np.where(
        is_dup,
        np.where(
            move,
            move_t + (rng.random(m) * 0.8 * (_END - move_t)).astype(np.int64),
            t0 + (rng.uniform(0.05, 1, m) * (_END - t0)).astype(np.int64),
        ),
        t0 + rng.integers(0, 2 * _DAY, m),
    )
    first_code = np.where(nick, 2, (rng.random(m) < 0.3).astype(np.int64))
    sfx = (rng.random(m) < 0.4) & (r["suffix"] != "").to_numpy()
    r = r.with_columns(
        first_name=_render(r, first_code, [pl.col("first"), pl.col("first_alt"), pl.col("nick")]),
        last_name=_render(r, old_surname.astype(np.int64), [pl.col("last"), pl.col("maiden")]),
    )
    r = _patch(r, "last_name", sfx, pl.col("last_name") + pl.lit(" ") + pl.col("suffix"))
    r = _noise(r, "first_name", rng, typo=typo_first, strip_accents=0.2)
    r = _noise(r, "last_name", rng, typo=typo_last, strip_accents=0.2)
    r = _pick_mailbox(r, alt.astype(np.int64))
    code = np.where(
        recase, _cat(rng, m, [0, 60, 0, 10, 30]), _cat(rng, m, [93, 2, 0.3, 0, 1.5, 0.5, 0.4, 2.3])
    )
    r = r.with_columns(email=_email(r, rng, code), phone=_phone_col(r, rng, [85, 8, 7, 0, 0]))
    r = _address(r, move)
    r = r.with_columns(
        street=_street(r, rng),
        zip=_zip(r, rng, [80, 14, 6]),
        city=pl.col("a_city"),
        state=pl.col("a_state"),
    )
    r = _patch(
        r, "city", rng.random(m) < 0.3, pl.col("city").str.replace("St. ", "Saint ", literal=True)
    )
    r = _noise(r, "city", rng, typo=0.01, case=0.04, space=0.01, strip_accents=0)
    r = _patch(r, "state", rng.random(m) < 0.02, pl.col("state").str.to_lowercase())
    dob = pl.from_epoch(pl.col("dob"), time_unit="d")
    r = r.with_columns(
        date_of_birth=_render(
            r,
            _cat(rng, m, [50, 28, 12, 4, 5.7, 0.3]),
            [
                dob.dt.strftime("%Y-%m-%d"),
                dob.dt.strftime("%m/%d/%Y"),
                dob.dt.strftime("%d %b %Y"),
                dob.dt.strftime("%-m/%-d/%Y"),
                None,
                "1900-01-01",
            ],
        ),
        country=_choice(_COUNTRIES, _cat(rng, m, [50, 20, 18, 7, 2, 2, 1])),
        _created=np.minimum(created, _END),
        _keep=keep_loyalty,
    )
    return r.select(
        pl.col("pid").alias("_pid"),
        "first_name",
        "last_name",
        "email",
        "phone",
        "street",
        "city",
        "state",
        "zip",
        "country",
        "date_of_birth",
        created_at=_fmt_ts(pl.col("_created")),
        loyalty_id=pl.when(pl.col("_keep")).then(pl.col("loyalty")),
    )


def _orders(p: pl.DataFrame, rng: np.random.Generator, v: _Vocab) -> pl.DataFrame:
    """One row per order; checkout forms are where emails get tags and names get titles."""
    r, _ = _gather(
        p,
        p["n_orders"].to_numpy(),
        [*_PERSON, *_moved("zip5", "zip4"), "card1", "card2", "currency", "fav_cat"],
    )
    m = r.height
    t0 = r["t0"].to_numpy()
    ts = t0 + (rng.random(m) * (_END - t0)).astype(np.int64)
    # Families with a shared mailbox often shop with it.
    fam = r["f_local"].is_not_null().to_numpy()
    r = _pick_mailbox(r, np.where(fam & (rng.random(m) < 0.35), 2, _cat(rng, m, [88, 12])))
    r = r.with_columns(
        customer_email=_email(r, rng, _cat(rng, m, [79, 5, 5, 4, 3, 1, 1.2, 1.8])),
        phone=_phone_col(r, rng, [80, 6, 10.5, 2, 1.5]),
    )
    r = _full_name(r, rng, [42, 10, 6, 12, 9, 5, 7, 4, 2, 0.6, 0, 0, 0, 2], strip_accents=0.5)
    ws = _cat(rng, m, [99, 0.5, 0.5])
    r = r.with_columns(
        billing_name=_render(
            r, ws, [pl.col("_name"), pl.lit(" ") + pl.col("_name"), pl.col("_name") + pl.lit("  ")]
        )
    )

    cat = np.where(
        rng.random(m) < 0.55,
        r["fav_cat"].to_numpy(),
        rng.choice(len(v.category), m, p=v.category_p),
    )
    currency = r["currency"].to_numpy()
    fx = np.select([currency == "EUR", currency == "GBP"], [0.92, 0.79], 1.0)
    cents = np.maximum(
        np.round(np.exp(rng.normal(v.category_mu[cat], v.category_sd[cat])) * fx * 100), 99
    ).astype(np.int64)
    channel = _cat(rng, m, [55, 25, 12, 3, 5])
    r = _address(r, r["moved"].to_numpy() & (ts > r["move_t"].to_numpy()))
    gift = v.zip3.gather(rng.choice(len(v.city), m, p=v.city_p)) + _digits(rng, m, 0, 100)
    r = _with(r, _gift=gift.str.zfill(5), _zip=_zip(r, rng, [86, 10, 4]))
    zip_code = np.where(channel == _STORE, 2, _cat(rng, m, [95, 4, 1]))
    card_code = _cat(rng, m, [78, 18, 4])
    card_code = np.where((card_code == 1) & r["card2"].is_null().to_numpy(), 0, card_code)
    r = r.with_columns(
        shipping_zip=_render(r, zip_code, [pl.col("_zip"), pl.col("_gift"), None]),
        card_last4=_render(r, card_code, [pl.col("card1"), pl.col("card2"), None]),
        category=v.category.gather(cat),
        currency=pl.col("currency"),
        _ts=ts,
        _cents=cents,
        channel=_choice(_ORDER_CHANNELS, channel),
    )
    r = _patch(
        r, "card_last4", rng.random(m) < 0.015, pl.col("card_last4").str.strip_chars_start("0")
    )
    r = _patch(r, "category", rng.random(m) < 0.03, pl.col("category").str.to_lowercase())
    r = _patch(r, "currency", rng.random(m) < 0.01, pl.col("currency").str.to_lowercase())
    return r.select(
        pl.col("pid").alias("_pid"),
        order_date=_fmt_ts(pl.col("_ts"), "%Y-%m-%d %H:%M:%S"),
        customer_email="customer_email",
        billing_name="billing_name",
        phone="phone",
        amount=pl.concat_str(
            [
                (pl.col("_cents") // 100).cast(pl.String),
                pl.lit("."),
                (pl.col("_cents") % 100).cast(pl.String).str.zfill(2),
            ]
        ),
        currency="currency",
        category="category",
        channel="channel",
        shipping_zip="shipping_zip",
        card_last4="card_last4",
    )


def _social(p: pl.DataFrame, rng: np.random.Generator, v: _Vocab) -> pl.DataFrame:
    """Accounts: nicknames and handles, an email only sometimes, a city instead of an address."""
    r, pi = _gather(
        p,
        p["n_social"].to_numpy(),
        [*_PERSON, *_moved("city", "state"), "s_first", "s_last", "s_nick", "dob", "fav_cat"],
    )
    m = r.height
    second = np.r_[False, pi[1:] == pi[:-1]] if m else np.zeros(0, dtype=bool)
    plat = _cat(rng, m, [35, 20, 25, 12, 8])
    # A second account is on another platform than the first.
    prev = np.r_[0, plat[:-1]] if m else plat
    plat = np.where(second, (prev + 1 + rng.integers(0, 4, m)) % 5, plat)
    linkedin = plat == _LINKEDIN
    r = r.with_columns(
        _yy=((1970 + (pl.col("dob") / _YEAR).floor()) % 100)
        .cast(pl.Int64)
        .cast(pl.String)
        .str.zfill(2),
        _d2=_digits(rng, m, 1, 100).str.zfill(2),
        _d4=_digits(rng, m, 100, 10_000),
        _tail=_digits(rng, m, 100_000, 1_000_000),
    )
    f, lc, k = pl.col("s_first"), pl.col("s_last"), pl.col("s_nick")
    # LinkedIn makes its own handles: first-last-digits.
    style = np.where(linkedin, 9, _cat(rng, m, [20, 14, 8, 14, 10, 6, 8, 10, 10]))
    present = rng.random(m) < 0.4
    # A handle that is just a nickname only comes with an email, so the account stays
    # linkable by something (a good matcher should find it, not guess it).
    style = np.where((style == 6) & ~present, 4, style)
    r = r.with_columns(
        _base=_render(
            r,
            style,
            [
                f + lc,
                f + pl.lit("_") + lc,
                f + pl.lit(".") + lc,
                f.str.slice(0, 1) + lc,
                k + lc,
                lc + f,
                k,
                f + lc.str.slice(0, 1),
                k + pl.lit("_") + lc,
                f + pl.lit("-") + lc + pl.lit("-") + pl.col("_tail"),
            ],
        )
    )
    base = pl.col("_base")
    r = r.with_columns(
        _h=_render(
            r,
            np.where(linkedin, 0, _cat(rng, m, [30, 45, 20, 5])),
            [base, base + pl.col("_d2"), base + pl.col("_yy"), base + pl.col("_d4")],
        )
    )
    h = pl.col("_h")
    r = r.with_columns(
        handle=_render(
            r,
            np.where(linkedin, 0, _cat(rng, m, [93, 3, 2, 2])),
            [h, pl.lit("_") + h + pl.lit("_"), pl.lit("the") + h, pl.lit("real") + h],
        )
    )
    r = r.with_columns(handle=_unique(r["handle"], rng))

    r = _full_name(r, rng, [25, 0, 0, 8, 3, 0, 3, 4, 0, 0, 22, 20, 8, 0], strip_accents=0.1)
    r = _with(
        r,
        _emoji=_choice(("✨", "🌸", "🏀", "☕", "🌊", "💫", "🎧", "🐶"), rng.integers(0, 8, m)),
        _catn=v.category.gather(r["fav_cat"].to_numpy()).str.to_lowercase(),
    )
    shown = np.where(linkedin, 4, _cat(rng, m, [86, 5, 4, 5]))
    shown = np.where((shown == 2) & r["maiden"].is_null().to_numpy(), 0, shown)
    r = r.with_columns(
        display_name=_render(
            r,
            shown,
            [
                pl.col("_name"),
                pl.col("_nk") + pl.lit(" ") + pl.col("_emoji"),
                pl.col("first") + pl.lit(" ") + pl.col("maiden"),  # never updated after the wedding
                pl.col("_name") + pl.lit(" | ") + pl.col("_catn") + pl.lit(" lover"),
                pl.col("first") + pl.lit(" ") + pl.col("last"),
            ],
        )
    )

    r = _pick_mailbox(r, (rng.random(m) < 0.25).astype(np.int64))
    r = r.with_columns(email=_email(r, rng, np.where(present, _cat(rng, m, [88, 6, 0, 0, 6]), 7)))
    t0 = r["t0"].to_numpy()
    active = t0 + (rng.beta(3, 1, m) * (_END - t0)).astype(np.int64)
    r = _address(r, r["moved"].to_numpy() & (active > r["move_t"].to_numpy()))
    r = r.with_columns(
        bio_location=_render(
            r,
            _cat(rng, m, [55, 20, 25]),
            [pl.col("a_city"), pl.col("a_city") + pl.lit(", ") + pl.col("a_state"), None],
        ),
        post_text=v.posts.pick(rng, _cat(rng, m, [20, 30, 50])).get_column("text"),
        _active=active,
        followers=np.exp(rng.normal(5.0, 1.6, m)).astype(np.int64),
        posts=np.exp(rng.normal(3.5, 1.4, m)).astype(np.int64),
    )
    return r.select(
        pl.col("pid").alias("_pid"),
        "handle",
        platform=_choice(_PLATFORMS, plat),
        display_name="display_name",
        email="email",
        followers="followers",
        posts="posts",
        last_active=_fmt_ts(pl.col("_active")),
        bio_location="bio_location",
        post_text=pl.col("post_text")
        .str.replace_all("{category}", pl.col("_catn"), literal=True)
        .str.replace_all("{city}", pl.col("a_city"), literal=True)
        .str.replace_all("{brandtag}", pl.lit(_BRAND_TAG), literal=True)
        .str.replace_all("{brand}", pl.lit(_BRAND), literal=True),
    )


def _tickets(p: pl.DataFrame, rng: np.random.Generator, v: _Vocab) -> pl.DataFrame:
    """Support tickets: whatever name the customer typed, the text written in their mood."""
    r, _ = _gather(p, p["n_tickets"].to_numpy(), [*_PERSON, "fav_cat"])
    m = r.height
    t0 = r["t0"].to_numpy()
    # Opened early enough that even a slow resolution lands inside the window.
    latest = _END - 50 * _DAY
    created = t0 + (rng.random(m) * np.maximum(latest - t0, 0)).astype(np.int64)
    status = _cat(rng, m, [10, 10, 45, 35])
    done = status >= 2
    hours = np.clip(np.exp(rng.normal(3.0, 1.3, m)), 0.1, 45 * 24)
    resolved = created + (hours * 3600).astype(np.int64)
    # Slow resolutions make unhappy customers, and unhappy customers write angrily.
    score = np.clip(np.round(5.4 - 0.75 * np.log1p(hours / 4) + rng.normal(0, 0.7, m)), 1, 5)
    answered = done & (rng.random(m) < 0.6)
    csat = np.where(answered, score, 0).astype(np.int64)
    tone = np.where(
        answered,
        np.select([csat >= 4, csat == 3], [2, 1], 0),
        np.where(done, _cat(rng, m, [25, 50, 25]), _cat(rng, m, [55, 45, 0])),
    )
    channel = _cat(rng, m, [40, 25, 15, 20])
    by_phone = channel == _PHONE_CHANNEL
    r = _full_name(r, rng, [45, 3, 1, 10, 2, 2, 4, 8, 0, 0, 12, 4, 5, 4])
    r = _pick_mailbox(r, _cat(rng, m, [82, 18]))
    code = np.where(
        by_phone & (rng.random(m) < 0.6), 7, _cat(rng, m, [86, 3, 2, 1, 1, 0.5, 0.3, 6.2])
    )
    phone = _phone_col(r, rng, [80, 10, 10, 0, 0])
    phone_on = np.where(by_phone, rng.random(m) < 0.92, rng.random(m) < 0.15)
    text = v.tickets.pick(rng, tone)
    body = text.get_column("body")
    signed = rng.random(m) < 0.35
    signoff = v.signoffs.gather(rng.integers(0, len(v.signoffs), m))
    r = r.with_columns(
        requester_email=_email(r, rng, code),
        phone=_null_where(phone, ~phone_on),
        subject=text.get_column("subject"),
        body=_where(signed, body + signoff, body),
        _order="#" + _digits(rng, m, 1_000_000, 9_999_999),
        _days=_digits(rng, m, 2, 30),
        _catn=v.category.gather(r["fav_cat"].to_numpy()).str.to_lowercase(),
        _created=created,
        _resolved=np.where(done, resolved, -1),
        _csat=csat,
    )

    def fill(e: pl.Expr) -> pl.Expr:
        return (
            e.str.replace_all("{order}", pl.col("_order"), literal=True)
            .str.replace_all("{category}", pl.col("_catn"), literal=True)
            .str.replace_all("{days}", pl.col("_days"), literal=True)
            .str.replace_all("{first}", pl.col("_nk"), literal=True)
        )

    return r.select(
        pl.col("pid").alias("_pid"),
        requester_name=pl.col("_name"),
        requester_email="requester_email",
        phone="phone",
        created_at=_fmt_ts(pl.col("_created")),
        resolved_at=pl.when(pl.col("_resolved") >= 0).then(_fmt_ts(pl.col("_resolved"))),
        status=_choice(_STATUSES, status),
        channel=_choice(_TICKET_CHANNELS, channel),
        csat=pl.when(pl.col("_csat") > 0).then(pl.col("_csat").cast(pl.String)),
        subject=fill(pl.col("subject")),
        body=fill(pl.col("body")),
    )


# ---------------------------------------------------------------------------------------------
# Writing


def _field(col: str) -> pl.Expr:
    """RFC 4180, as polars writes it: quote a field holding a quote, comma or line break."""
    e = pl.col(col).fill_null("")
    quoted = pl.lit('"') + e.str.replace_all('"', '""', literal=True) + pl.lit('"')
    return pl.when(e.str.contains(r'[",\r\n]')).then(quoted).otherwise(e)


def _break(
    df: pl.DataFrame, cols: Sequence[str], rng: np.random.Generator, name_col: str
) -> tuple[np.ndarray, list[str]]:
    """Spoil about one line in a thousand the way broken exporters do: (rows, their lines).

    Half have a name with a comma written without quotes (one field too many). The rest end
    with a quote that is only closed on the next physical line, followed by a stray field (an
    empty one would pass: readers forgive a trailing comma). Both stay confined to their own
    record, so a strict reader rejects exactly that row; a quote that is never closed would
    swallow the rest of the file, and DuckDB's dialect sniffer then misreads all of it.
    """
    m = df.height
    k = int(rng.binomial(m, 0.001))
    if m >= 500:
        k = max(k, 1)
    if k == 0:
        return np.zeros(0, dtype=np.int64), []
    idx = np.sort(rng.choice(m, size=k, replace=False))
    # Prefer rows whose name really has a comma: that is how the fault arises. The last field
    # must not be empty, or the extra field reads as a forgivable trailing comma and the row
    # is silently shifted instead of rejected.
    candidates = np.flatnonzero(
        (
            df[name_col].fill_null("").str.contains(",") & (df[cols[-1]].fill_null("") != "")
        ).to_numpy()
    )
    n_comma = min(int((rng.random(k) < 0.5).sum()), len(candidates))
    picked = np.sort(rng.choice(candidates, size=n_comma, replace=False))
    rest = np.setdiff1d(idx, picked)[: k - n_comma]
    idx = np.sort(np.concatenate([picked, rest])).astype(np.int64)
    sub = _with(df[idx], _comma=np.isin(idx, picked))
    raw = pl.col(name_col).fill_null("").str.replace_all('"', "", literal=True)
    extra = pl.concat_str([raw if c == name_col else _field(c) for c in cols], separator=",")
    last = cols[-1]
    open_quote = pl.concat_str(
        [_field(c) for c in cols[:-1]]
        + [
            pl.lit('"')
            + pl.col(last).fill_null("").str.replace_all('"', "", literal=True)
            + pl.lit('\n",0')
        ],
        separator=",",
    )
    lines = sub.select(pl.when(pl.col("_comma")).then(extra).otherwise(open_quote))
    return idx, lines.to_series().to_list()


def _write_csv(
    fh: BinaryIO, rows: pl.DataFrame, cols: Sequence[str], broken: tuple[np.ndarray, list[str]]
) -> None:
    """Rows as RFC 4180 CSV, except the broken ones, which are written as given."""
    frame = rows.select(cols)
    at = 0
    for i, line in zip(broken[0].tolist(), broken[1], strict=True):
        frame.slice(at, i - at).write_csv(fh, include_header=False)
        fh.write(line.encode() + b"\n")
        at = i + 1
    frame.slice(at).write_csv(fh, include_header=False)


@dataclass
class _Source:
    file: str
    build: Callable[[pl.DataFrame, np.random.Generator, _Vocab], pl.DataFrame]
    id_col: str
    id_prefix: str
    id_start: int
    id_width: int
    columns: Sequence[str] = ()
    breakable: str | None = None  # the name column a broken line is made from

    @property
    def stem(self) -> str:
        return self.file.split(".")[0]


_SOURCES = (
    _Source("crm.csv", _crm, "contact_id", "C", 1, 8, CRM_COLUMNS),
    _Source(
        "orders.csv", _orders, "order_id", "ORD-", 10_000_001, 8, ORDER_COLUMNS, "billing_name"
    ),
    _Source("social.ndjson", _social, "handle", "", 0, 0),
    _Source(
        "tickets.csv", _tickets, "ticket_id", "TCK-", 1_000_001, 7, TICKET_COLUMNS, "requester_name"
    ),
)


def _write_source(
    src: _Source,
    people: pl.DataFrame,
    seed: int,
    stream: int,
    out_dir: Path,
    truth: BinaryIO,
    v: _Vocab,
    progress: Progress | None,
) -> int:
    n = people.height
    # Social handles must be unique across the whole file, so that export is one block.
    block = n if src.id_col == "handle" else _BLOCK
    blocks = max(1, -(-n // block))
    written = 0
    with open(out_dir / src.file, "wb") as fh:
        if src.columns:
            fh.write((",".join(src.columns) + "\n").encode())
        for b in range(blocks):
            rng = _rng(seed, stream, b)
            rows = src.build(people.slice(b * block, block), rng, v)
            # Exports are not grouped by person.
            rows = rows[rng.permutation(rows.height)]
            if src.id_prefix:
                ids = pl.Series(np.arange(rows.height, dtype=np.int64) + src.id_start + written)
                rows = rows.with_columns(
                    pl.lit(src.id_prefix).alias(src.id_col)
                    + ids.cast(pl.String).str.zfill(src.id_width)
                )
            if src.columns:
                broken = (
                    _break(rows, src.columns, rng, src.breakable)
                    if src.breakable
                    else (np.zeros(0, dtype=np.int64), [])
                )
                _write_csv(fh, rows, src.columns, broken)
            else:
                encoded = rows.select(pl.struct(*SOCIAL_KEYS).struct.json_encode().alias("j"))
                # An absent email is left out, as most APIs do, rather than written as null.
                encoded.with_columns(
                    pl.col("j").str.replace(',"email":null', "", literal=True)
                ).write_csv(fh, include_header=False, quote_style="never")
            rows.select(
                pl.lit(src.stem).alias("source"),
                pl.col(src.id_col).alias("source_record_id"),
                pl.col("_pid").alias("person_id"),
            ).write_csv(truth, include_header=False)
            written += rows.height
            if progress:
                progress(src.file, (b + 1) / blocks)
    return written


def true_people(people: int, seed: int) -> pl.DataFrame:
    """Who each person of ``generate_sample(people, seed)`` really is: one row per person_id
    of its truth.csv, with each golden field as a clean export would write it: the name
    without nickname, typo or title, the person's own mailbox, their mobile (E.164), the
    address they live at at the end of the window (after a move), the date of birth.
    What a golden record should read, to measure survivorship by
    (:func:`cxunify.evaluate.golden_accuracy`).

    `first_name_alt` is the other spelling of the first name (with or without its accents),
    which the person writes too; it equals `first_name` for a name without accents.
    """
    if people < 1:
        raise ValueError("people must be at least 1")
    p = _people(people, seed, _vocab())
    unit = pl.col("m_unit")
    return p.select(
        person_id=pl.col("pid"),
        first_name=pl.col("first"),
        first_name_alt=pl.col("first_alt"),
        last_name=pl.col("last"),
        email=pl.col("e_local") + pl.lit("@") + pl.col("e_domain"),
        phone=pl.lit("+1") + pl.col("mobile"),
        street=pl.concat_str(
            [pl.col("m_street_num"), pl.col("m_street"), pl.col("m_stype_full")], separator=" "
        )
        + pl.when(unit.is_null()).then(pl.lit("")).otherwise(pl.lit(" Apt ") + unit),
        city=pl.col("m_city"),
        state=pl.col("m_state"),
        postcode=pl.col("m_zip5"),
        country=pl.lit("US"),
        dob=pl.from_epoch(pl.col("dob"), time_unit="d"),
    )


def generate_sample(
    people: int, seed: int, out_dir: Path, *, progress: Progress | None = None
) -> SampleSummary:
    """Write crm.csv, orders.csv, social.ndjson, tickets.csv and truth.csv into `out_dir`.

    The bytes written depend only on `(people, seed)`.
    """
    if people < 1:
        raise ValueError("people must be at least 1")
    v = _vocab()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if progress:
        progress("people", 0.0)
    persons = _people(people, seed, v)
    if progress:
        progress("people", 1.0)
    counts: dict[str, int] = {}
    with open(out_dir / "truth.csv", "wb") as truth:
        truth.write(b"source,source_record_id,person_id\n")
        for stream, src in enumerate(_SOURCES, start=1):
            counts[src.file] = _write_source(
                src, persons, seed, stream, out_dir, truth, v, progress
            )
    return SampleSummary(people=people, files=counts, truth_rows=sum(counts.values()))


SAMPLE_FILES = (*(src.file for src in _SOURCES), "truth.csv")


def write_sample(people: int, seed: int, out_dir: Path, *, force: bool = False) -> SampleSummary:
    """`generate_sample` into `out_dir`, refusing to replace a file there that holds anything
    else than these `people` and `seed` write (another run's exports, or a user's own
    crm.csv) unless `force`: ``cxunify sample --out data/`` replaced the exports in data/
    without a word. The files are written beside them first and each is renamed into place,
    so an interrupted run leaves the old file or the new one."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f".sample-{uuid.uuid4().hex[:8]}"
    try:
        summary = generate_sample(people, seed, staging)
        for name in SAMPLE_FILES if not force else ():
            target = out_dir / name
            if target.exists() and not filecmp.cmp(target, staging / name, shallow=False):
                raise UserError(
                    f"{target}: exists, and is not what --people {people} --seed {seed} write; "
                    "pass --force to replace it, or write to another --out"
                )
        for name in SAMPLE_FILES:
            (staging / name).replace(out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary
