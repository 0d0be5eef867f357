"""The sample generator: files, truth, determinism, and the messiness the matcher is judged on."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from cxunify.sample import (
    CRM_COLUMNS,
    FILES,
    ORDER_COLUMNS,
    SOCIAL_KEYS,
    TICKET_COLUMNS,
    SampleSummary,
    _people,
    _vocab,
    generate_sample,
    true_people,
)

COLUMNS = {"crm.csv": CRM_COLUMNS, "orders.csv": ORDER_COLUMNS, "tickets.csv": TICKET_COLUMNS}
ID_COLUMN = {
    "crm.csv": "contact_id",
    "orders.csv": "order_id",
    "social.ndjson": "handle",
    "tickets.csv": "ticket_id",
}


def read_records(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header and records, tolerant of the deliberately broken ones (they keep their id)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def read_social(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def as_dicts(path: Path) -> list[dict[str, str]]:
    header, rows = read_records(path)
    return [dict(zip(header, r, strict=True)) for r in rows if len(r) == len(header)]


def truth_of(out: Path) -> dict[str, dict[str, str]]:
    """source -> record id -> person id."""
    by_source: dict[str, dict[str, str]] = defaultdict(dict)
    with (out / "truth.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            assert row["source_record_id"] not in by_source[row["source"]]
            by_source[row["source"]][row["source_record_id"]] = row["person_id"]
    return by_source


def digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    out = tmp_path_factory.mktemp("small")
    return out, generate_sample(300, 1, out)


@pytest.fixture(scope="module")
def messy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleSummary]:
    out = tmp_path_factory.mktemp("messy")
    return out, generate_sample(3000, 7, out)


def test_files_and_columns(small: tuple[Path, SampleSummary]) -> None:
    out, summary = small
    assert sorted(p.name for p in out.iterdir()) == sorted([*FILES, "truth.csv"])
    assert summary.people == 300
    assert list(summary.files) == list(FILES)
    for name, cols in COLUMNS.items():
        header, _ = read_records(out / name)
        assert tuple(header) == cols
    for obj in read_social(out / "social.ndjson"):
        assert set(obj) <= set(SOCIAL_KEYS)
        assert set(SOCIAL_KEYS) - set(obj) <= {"email"}
    assert (out / "truth.csv").read_text().splitlines()[0] == "source,source_record_id,person_id"


@pytest.mark.parametrize("fixture", ["small", "messy"])
def test_truth_covers_every_row_once(fixture: str, request: pytest.FixtureRequest) -> None:
    out, summary = request.getfixturevalue(fixture)
    truth = truth_of(out)
    assert summary.truth_rows == sum(len(ids) for ids in truth.values())
    for name in FILES:
        if name.endswith(".ndjson"):
            ids = [str(o["handle"]) for o in read_social(out / name)]
        else:
            _, rows = read_records(out / name)
            ids = [r[0] for r in rows]
        assert len(ids) == len(set(ids)), f"duplicate ids in {name}"
        assert len(ids) == summary.files[name]
        assert set(ids) == set(truth[name.split(".")[0]])


def test_true_people_are_the_people_the_exports_show(small: tuple[Path, SampleSummary]) -> None:
    """Each person's truth (what golden records are scored against) is what most of their
    CRM contacts write: the first CRM contact keeps their mailbox, mobile and address unless a
    typo, a placeholder, another format or (for a married woman) the maiden name got in."""
    out, _ = small
    people = true_people(300, 1)
    assert people.height == 300 and people["person_id"].n_unique() == 300
    assert set(truth_of(out)["crm"].values()) <= set(people["person_id"])
    truth = {row["person_id"]: row for row in people.iter_rows(named=True)}
    person_of = truth_of(out)["crm"]
    contacts = as_dicts(out / "crm.csv")
    same: Counter[str] = Counter()
    for contact in contacts:
        person = truth[person_of[contact["contact_id"]]]
        same["first_name"] += contact["first_name"] in (
            person["first_name"],
            person["first_name_alt"],
        )
        same["last_name"] += contact["last_name"] == person["last_name"]
        same["email"] += contact["email"].strip().lower() == person["email"]
        same["phone"] += "+1" + re.sub(r"\D", "", contact["phone"])[-10:] == person["phone"]
        same["postcode"] += contact["zip"][:5] == person["postcode"]
        same["dob"] += contact["date_of_birth"] == person["dob"].isoformat()
    shares = {field: count / len(contacts) for field, count in same.items()}
    # (half the contacts write the date of birth as ISO, the others in another format)
    floors = {"first_name": 0.8, "last_name": 0.8, "email": 0.9, "phone": 0.85, "postcode": 0.85}
    assert all(shares[field] >= floor for field, floor in floors.items()), shares
    assert shares["dob"] >= 0.45, shares


def test_rows_per_person(messy: tuple[Path, SampleSummary]) -> None:
    _, summary = messy
    assert 3.5 <= summary.truth_rows / summary.people <= 5.5
    assert summary.files["orders.csv"] > summary.files["crm.csv"] > summary.files["tickets.csv"]


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_sample(400, 3, a)
    generate_sample(400, 3, b)
    generate_sample(400, 4, c)
    assert digests(a) == digests(b)
    other = digests(c)
    assert all(other[name] != digest for name, digest in digests(a).items())


def test_progress_reports_each_stage(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []
    generate_sample(50, 1, tmp_path, progress=lambda stage, frac: seen.append((stage, frac)))
    finished = {stage for stage, frac in seen if frac == 1.0}
    assert finished == {"people", *FILES}
    assert all(0.0 <= frac <= 1.0 for _, frac in seen)


def test_rejects_bad_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_sample(0, 1, tmp_path)


def test_people_keys_are_unique() -> None:
    people = _people(20_000, 5, _vocab())
    assert people["mobile"].n_unique() == people.height
    assert people["mobile"].str.contains(r"^[2-9]\d{2}[2-9]\d{6}$").all()
    # A landline is shared within a household, never with anyone's mobile.
    landlines = people["landline"].drop_nulls().unique()
    assert not landlines.is_in(people["mobile"].implode()).any()
    emails = people["e_local"] + "@" + people["e_domain"]
    assert emails.n_unique() == people.height
    # Gmail ignores dots, so two people may not differ by dots only.
    assert emails.str.replace_all(".", "", literal=True).n_unique() == people.height


def test_broken_lines(messy: tuple[Path, SampleSummary]) -> None:
    out, summary = messy
    assert summary.files["orders.csv"] >= 1000
    for name in ("orders.csv", "tickets.csv"):
        header, rows = read_records(out / name)
        broken = [r for r in rows if len(r) != len(header)]
        assert 1 <= len(broken) <= max(3, len(rows) // 200), name
        # Broken or not, every record still starts with its id.
        assert all(re.fullmatch(r"(ORD|TCK)-\d+", r[0]) for r in broken)
    _, crm = read_records(out / "crm.csv")
    assert all(len(r) == len(CRM_COLUMNS) for r in crm)


def test_duckdb_rejects_exactly_the_broken_rows(messy: tuple[Path, SampleSummary]) -> None:
    duckdb = pytest.importorskip("duckdb")
    out, _ = messy
    for name in ("crm.csv", "orders.csv", "tickets.csv"):
        header, rows = read_records(out / name)
        good = sum(len(r) == len(header) for r in rows)
        con = duckdb.connect()
        parsed = con.execute(
            "SELECT count(*) FROM read_csv($p, all_varchar = true, header = true, "
            "store_rejects = true)",
            {"p": str(out / name)},
        ).fetchone()[0]
        assert parsed == good, name


def test_values_are_well_formed(messy: tuple[Path, SampleSummary]) -> None:
    out, _ = messy
    iso = re.compile(r"20(2[2-6])-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    for t in as_dicts(out / "tickets.csv"):
        assert t["status"] in {"open", "pending", "solved", "closed"}
        assert t["channel"] in {"email", "chat", "phone", "web"}
        assert iso.fullmatch(t["created_at"])
        if t["status"] in {"solved", "closed"}:
            assert t["resolved_at"] > t["created_at"]
        else:
            assert t["resolved_at"] == "" and t["csat"] == ""
        assert t["csat"] in {"", "1", "2", "3", "4", "5"}
        assert "{" not in t["subject"] + t["body"]
    for s in read_social(out / "social.ndjson"):
        assert s["platform"] in {"instagram", "x", "facebook", "tiktok", "linkedin"}
        assert iso.fullmatch(str(s["last_active"]))
        assert "{" not in str(s["post_text"])
    for c in as_dicts(out / "crm.csv"):
        assert "2022-01-01T00:00:00Z" <= c["created_at"] <= "2026-10-31T23:59:59Z"
    for o in as_dicts(out / "orders.csv"):
        assert re.fullmatch(r"\d+\.\d\d", o["amount"])
        assert "2022-01-01" <= o["order_date"] <= "2026-10-31 23:59:59"


def test_csat_follows_resolution_time(messy: tuple[Path, SampleSummary]) -> None:
    out, _ = messy
    fast: list[int] = []
    slow: list[int] = []
    for t in as_dicts(out / "tickets.csv"):
        if t["csat"]:
            hours = (_ts(t["resolved_at"]) - _ts(t["created_at"])) / 3600
            (fast if hours < 12 else slow).append(int(t["csat"]))
    assert sum(fast) / len(fast) > sum(slow) / len(slow) + 0.5


def _ts(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_messiness_is_present(messy: tuple[Path, SampleSummary]) -> None:
    out, _ = messy
    truth = truth_of(out)
    crm = as_dicts(out / "crm.csv")
    orders = as_dicts(out / "orders.csv")
    tickets = as_dicts(out / "tickets.csv")

    emails = [o["customer_email"] for o in orders]
    assert sum("+" in e for e in emails) >= 20
    assert any(e.isupper() and "@" in e for e in emails)
    junk_email = {"test@test.com", "n/a", "none@none.com", "noemail@noemail.com"}
    assert sum(e.lower() in junk_email for e in emails) >= 5
    phones = [o["phone"] for o in orders]
    assert sum(p in {"0000000000", "n/a", "1234567890"} for p in phones) >= 5
    shapes = {re.sub(r"\d", "9", p) for p in phones}
    assert {
        "(999) 999-9999",
        "999.999.9999",
        "9999999999",
        "+9 (999) 999-9999",
        "9-999-999-9999",
        "+99999999999",
    } <= shapes

    names = [o["billing_name"] for o in orders]
    assert any(re.fullmatch(r"[A-Z'\- ]+, [A-Z'\- ]+", n) for n in names)  # SMITH, ROBERT
    assert any(n.startswith(("Dr. ", "Mr. ", "Mrs. ", "Ms. ")) for n in names)
    assert any(re.search(r"\bJr\b|\bSr\b", n) for n in names)

    dob_shapes = {
        re.sub(r"[A-Z][a-z]{2}", "Mon", re.sub(r"\d", "9", c["date_of_birth"])) for c in crm
    }
    assert {"9999-99-99", "99/99/9999", "99 Mon 9999", ""} <= dob_shapes
    assert any(re.fullmatch(r"\d{5}-\d{4}", c["zip"]) for c in crm)
    assert any(n != n.strip() for c in crm for n in (c["first_name"], c["last_name"]))
    assert any(not n.isascii() for c in crm for n in (c["first_name"], c["last_name"]))

    # Nicknames: one person shows up as "Robert" in one place and "Bob" in another.
    nicknames = {
        (row["name"].lower(), nick.lower())
        for row in csv.DictReader(
            io.StringIO(
                (Path(__file__).parents[1] / "cxunify/data/sample/first_names.csv").read_text()
            )
        )
        for nick in row["nicknames"].split("|")
        if nick
    }
    firsts: dict[str, set[str]] = defaultdict(set)
    for c in crm:
        firsts[truth["crm"][c["contact_id"]]].add(c["first_name"].strip().lower())
    for t in tickets:
        firsts[truth["tickets"][t["ticket_id"]]].add(t["requester_name"].split(" ")[0].lower())
    pairs = sum(any((a, b) in nicknames for a in fs for b in fs) for fs in firsts.values())
    assert pairs >= 20

    # CRM re-registrations: one person, several contact rows.
    per_person: dict[str, int] = defaultdict(int)
    for c in crm:
        per_person[truth["crm"][c["contact_id"]]] += 1
    dups = sum(n - 1 for n in per_person.values())
    assert 0.04 <= dups / len(per_person) <= 0.15

    # Households: different people at one address (street number and name, ZIP).
    at: dict[tuple[str, str], set[str]] = defaultdict(set)
    for c in crm:
        street = " ".join(re.sub(r"[^a-z0-9 ]", "", c["street"].lower()).split()[:2])
        at[(street, c["zip"][:5])].add(truth["crm"][c["contact_id"]])
    assert sum(len(p) > 1 for p in at.values()) >= 50

    # Common names: unrelated people with the same first and last name.
    named: dict[tuple[str, str], set[str]] = defaultdict(set)
    for c in crm:
        key = (c["first_name"].strip().lower(), c["last_name"].strip().lower())
        named[key].add(truth["crm"][c["contact_id"]])
    assert max(len(p) for p in named.values()) >= 3

    # A shared family mailbox used by more than one person.
    users: dict[str, set[str]] = defaultdict(set)
    for o in orders:
        e = o["customer_email"].strip().lower()
        if "family@" in e or "house" in e or re.match(r"the\w+s@", e):
            users[e].add(truth["orders"][o["order_id"]])
    assert any(len(p) > 1 for p in users.values())


def test_hard_negatives_in_people() -> None:
    people = _people(20_000, 3, _vocab())
    rows = people.select(
        "pid", "first", "last", "suffix", "dob", "h_street_num", "h_street", "h_zip5"
    ).rows(named=True)
    by_address: dict[tuple[str, str, str], list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        by_address[(r["h_street_num"], r["h_street"], r["h_zip5"])].append(r)
    juniors = twins = 0
    for group in by_address.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if (a["first"], a["last"]) == (b["first"], b["last"]) and a["dob"] != b["dob"]:
                    juniors += {a["suffix"], b["suffix"]} == {"Jr", "Sr"}
                if a["dob"] == b["dob"] and a["last"] == b["last"] and a["first"] != b["first"]:
                    twins += 1
    assert juniors >= 20
    assert twins >= 20
