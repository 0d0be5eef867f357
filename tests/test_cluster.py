"""Connected components in SQL, and each merge guard on a constructed component."""

from __future__ import annotations

import datetime as dt

import pytest

from cxunify.block import NODES
from cxunify.cluster import (
    CLUSTERS,
    REFUSED,
    Guards,
    apply_guards,
    connected_components,
    label_propagation,
)
from cxunify.engine import DuckDBEngine
from cxunify.errors import CxunifyError
from cxunify.update import components_split, remember_components


@pytest.fixture
def engine():
    engine = DuckDBEngine()
    yield engine
    engine.close()


def clusters(engine: DuckDBEngine) -> list[list[int]]:
    rows = engine.rows(f"SELECT list(node ORDER BY node) FROM {CLUSTERS} GROUP BY cluster")
    return sorted(row[0] for row in rows)


@pytest.mark.parametrize("find", [connected_components, label_propagation])
def test_components_of_a_long_chain_and_isolated_nodes(engine, find):
    engine.execute("CREATE TABLE n AS SELECT range * 3 AS node FROM range(1, 203)")
    # a chain 3-6-...-600 given in scrambled order, plus 603 and 606 alone, and a pair
    # given twice and both ways round
    engine.execute(
        "CREATE TABLE e AS SELECT range * 3 AS left_node, range * 3 + 3 AS right_node "
        "FROM range(1, 200) UNION ALL SELECT 606, 603 UNION ALL SELECT 603, 606 "
        "ORDER BY hash(left_node)"
    )
    engine.execute("INSERT INTO n VALUES (609)")
    rounds = (
        connected_components(engine, "SELECT node FROM n", "SELECT * FROM e")
        if (find is connected_components)
        else find(engine, "SELECT node FROM n", "SELECT * FROM e")
    )
    assert clusters(engine) == [[3 * i for i in range(1, 201)], [603, 606], [609]]
    assert rounds < 20  # pointer jumping: logarithmic in the chain length, not linear


def test_components_of_no_nodes(engine):
    engine.execute("CREATE TABLE n (node BIGINT)")
    engine.execute("CREATE TABLE e (left_node BIGINT, right_node BIGINT)")
    connected_components(engine, "SELECT node FROM n", "SELECT * FROM e")
    assert clusters(engine) == []


def test_a_link_to_an_unknown_node_is_an_error_not_a_wrong_cluster(engine):
    engine.execute("CREATE TABLE n AS SELECT range AS node FROM range(1, 4)")
    engine.execute("CREATE TABLE e AS SELECT 1 AS left_node, 7 AS right_node")
    with pytest.raises(CxunifyError, match="not among the nodes"):
        connected_components(engine, "SELECT node FROM n", "SELECT * FROM e")


def node(
    node_id, first, last="smith", dob=None, suffix=None, email=None, national_id=None, key=None
):
    return (node_id, first, key or first, last, dob, suffix, email, national_id)


def guarded(engine, nodes, links, guards=None):
    engine.execute(
        f"CREATE OR REPLACE TABLE {NODES} (node BIGINT, first_name_std VARCHAR, "
        "first_name_key VARCHAR, last_name_std VARCHAR, dob DATE, name_suffix VARCHAR, "
        "email_std VARCHAR, national_id VARCHAR)"
    )
    engine.con.executemany(f"INSERT INTO {NODES} VALUES (?, ?, ?, ?, ?, ?, ?, ?)", nodes)
    engine.execute(
        "CREATE OR REPLACE TABLE l (left_node BIGINT, right_node BIGINT, match_weight DOUBLE)"
    )
    engine.con.executemany("INSERT INTO l VALUES (?, ?, ?)", links)
    connected_components(engine, f"SELECT node FROM {NODES}", "SELECT * FROM l")
    remember_components(engine)
    apply_guards(engine, "SELECT * FROM l", guards or Guards())
    split = components_split(engine)
    refused = engine.rows(f"SELECT left_node, right_node, guard FROM {REFUSED} ORDER BY ALL")
    return clusters(engine), split, refused


D1, D2 = dt.date(1980, 1, 2), dt.date(1951, 7, 9)


def test_household_sharing_address_and_phone_stays_apart(engine):
    # mother, father and child linked through a shared landline: three people
    nodes = [
        node(1, "mary", dob=D1),
        node(2, "john", dob=D2),
        node(3, "lily", dob=dt.date(2010, 5, 5)),
    ]
    found, split, refused = guarded(engine, nodes, [(1, 2, 20.0), (2, 3, 18.0)])
    assert found == [[1], [2], [3]]
    assert split == 1  # one component, split in three
    assert [r[2] for r in refused] == ["conflicting first name and date of birth"] * 2


def test_typos_and_nicknames_stay_together(engine):
    nodes = [
        node(1, "james", dob=D1),
        node(2, "jomes", dob=D1),
        node(3, "jim", key="james", dob=dt.date(1980, 2, 1)),
    ]
    found, split, refused = guarded(engine, nodes, [(1, 2, 20.0), (2, 3, 15.0)])
    assert found == [[1, 2, 3]]
    assert (split, refused) == (0, [])


@pytest.mark.parametrize(
    ("first", "other", "key"),
    [
        ("rcih", "richard", None),  # a typo of the nickname Rich
        ("bbo", "robert", None),  # a typo of Bob
        ("xnader", "alexander", None),  # a typo of Xander
        ("michazl", "mikey", "michael"),  # a typo of the formal name of the other's nickname
        ("c", "tina", "christina"),  # an initial of the formal name of the other's nickname
    ],
)
def test_a_typo_or_initial_of_a_nickname_stays_together(engine, first, other, key):
    """Refused as 'conflicting first name' before: 35 links between records of one person in
    the sample, such as Rcih Ryan and Richard Ryan, sharing an email."""
    nodes = [node(1, first), node(2, other, key=key)]
    found, _, refused = guarded(engine, nodes, [(1, 2, 25.0)])
    assert found == [[1, 2]] and refused == []


@pytest.mark.parametrize(
    ("first", "other"), [("pam", "patricia"), ("tim", "thomas"), ("ann", "jon")]
)
def test_a_name_one_letter_from_anothers_nickname_is_not_a_typo(engine, first, other):
    """Pam is one letter from Pat (Patricia) and Tim from Tom (Thomas), but they are names of
    their own: household members keep apart."""
    nodes = [node(1, first), node(2, other)]
    found, _, refused = guarded(engine, nodes, [(1, 2, 25.0)])
    assert found == [[1], [2]]
    assert refused == [(1, 2, "conflicting first name")]


def test_twins_share_a_birthday_but_not_a_first_name(engine):
    nodes = [node(1, "ella", dob=D1), node(2, "ava", dob=D1)]
    found, _, refused = guarded(engine, nodes, [(1, 2, 25.0)])
    assert found == [[1], [2]]
    assert refused == [(1, 2, "conflicting first name")]


@pytest.mark.parametrize(
    ("first", "other"),
    [("pam", "pat"), ("eric", "erica"), ("daniel", "danielle"), ("aiden", "jaden")],
)
def test_twins_with_names_alike_are_two_people(engine, first, other):
    """Two names the nickname table knows, of no common formal name, were still one name when
    they looked alike (Jaro-Winkler 0.8 and over: Pam and Pat 0.82, Eric and Erica 0.96):
    twins sharing a phone, an address and a birthday were one customer."""
    nodes = [node(1, first, dob=D1), node(2, other, dob=D1)]
    found, _, refused = guarded(engine, nodes, [(1, 2, 25.0)])
    assert found == [[1], [2]]
    assert refused == [(1, 2, "conflicting first name")]


@pytest.mark.parametrize(("first", "other"), [("kristen", "kirsten"), ("jonh", "john")])
def test_a_name_alike_an_unknown_or_known_one_may_be_its_typo(engine, first, other):
    """A name the table does not know may be a slip of another, known or not."""
    nodes = [node(1, first, dob=D1), node(2, other, dob=D1)]
    found, _, refused = guarded(engine, nodes, [(1, 2, 25.0)])
    assert found == [[1, 2]] and refused == []


def test_an_initial_does_not_bridge_two_first_names(engine):
    """J. Malone's order matched José's and Joshua's records alike (two brothers at one
    address): J. agreed with each, so the guard let the two brothers become one customer. With
    names written out on both sides, an initial says nothing more."""
    nodes = [node(1, "j", "malone"), node(2, "jose", "malone"), node(3, "joshua", "malone")]
    found, _, refused = guarded(engine, nodes, [(1, 2, 13.1), (1, 3, 13.1)])
    assert found == [[1, 2], [3]]
    assert refused == [(1, 3, "conflicting first name")]
    # An initial alone still agrees with the name it may stand for.
    found, _, refused = guarded(engine, nodes[:2], [(1, 2, 13.1)])
    assert found == [[1, 2]] and refused == []


@pytest.mark.parametrize(("first", "other"), [("janet", "joan"), ("jose", "joshua")])
def test_names_only_as_alike_as_relatives_are_two_people(engine, first, other):
    """Janet and Joan Gómez (Jaro-Winkler 0.81, neither in the nickname table) shared an
    address and became one customer: names the table does not know are one name's spellings
    at 0.85 and over, as typos are (Jonh and John 0.93), not at 0.8."""
    nodes = [node(1, first), node(2, other)]
    found, _, refused = guarded(engine, nodes, [(1, 2, 8.4)])
    assert found == [[1], [2]]
    assert refused == [(1, 2, "conflicting first name")]


def test_junior_and_senior_are_different_people(engine):
    nodes = [node(1, "robert", suffix="jr", dob=D1), node(2, "robert", suffix="sr", dob=D2)]
    found, _, refused = guarded(engine, nodes, [(1, 2, 30.0)])
    assert found == [[1], [2]]
    assert refused == [(1, 2, "conflicting date of birth and name suffix")]


def test_a_juniors_order_goes_to_the_junior_not_to_his_father(engine):
    """Father (no suffix) and son (Jr) share a landline; the son's order (Jr) was as near
    both, went to the father by node order, and the father's order (Sr) was then refused
    him: the son had no orders. Of links alike, one naming the same suffix goes first."""
    nodes = [
        node(1, "john", dob=D2),
        node(2, "john", suffix="jr", dob=D1),
        node(3, "john", suffix="jr"),
        node(4, "john", suffix="sr"),
    ]
    links = [(1, 2, 20.0), (1, 3, 26.2), (2, 3, 26.2), (1, 4, 26.2), (2, 4, 26.2)]
    found, _, _ = guarded(engine, nodes, links)
    assert found == [[1, 4], [2, 3]]


def test_a_replaced_first_name_is_outvoted_by_dob_and_national_id(engine):
    nodes = [
        node(1, "william", dob=D1, national_id="123"),
        node(2, "jayed", dob=D1, national_id="123"),
    ]
    found, _, refused = guarded(engine, nodes, [(1, 2, 30.0)])
    assert found == [[1, 2]] and refused == []


def test_a_shared_national_id_outweighs_one_conflict(engine):
    nodes = [node(1, "adam", national_id="123"), node(2, "charlotte", national_id="123")]
    found, _, refused = guarded(engine, nodes, [(1, 2, 30.0)])
    assert found == [[1, 2]] and refused == []


def test_swapped_names_with_a_typo_are_compatible(engine):
    nodes = [node(1, "matthew", last="garcia"), node(2, "garcia", last="matthwe")]
    found, _, refused = guarded(engine, nodes, [(1, 2, 30.0)])
    assert found == [[1, 2]] and refused == []


def test_strongest_links_are_kept_when_splitting(engine):
    # 2 is linked to both 1 (strongly) and 3 (weakly); 1 and 3 cannot be one person
    nodes = [node(1, "anna", dob=D1), node(2, "anna"), node(3, "bert", dob=D2)]
    found, _, refused = guarded(engine, nodes, [(1, 2, 30.0), (2, 3, 10.0)])
    assert found == [[1, 2], [3]]
    assert refused == [(2, 3, "conflicting first name and date of birth")]


def test_too_many_emails(engine):
    nodes = [node(i, "anna", email=f"a{i}@x.com") for i in range(1, 5)]
    found, _, refused = guarded(
        engine, nodes, [(1, 2, 30.0), (2, 3, 20.0), (3, 4, 10.0)], Guards(max_emails=3)
    )
    assert found == [[1, 2, 3], [4]]
    assert refused == [(3, 4, "more than 3 emails")]
