from pathlib import Path

import pytest

from cxunify.config import load_config
from cxunify.errors import ConfigError
from tests.conftest import ROOT, write

GOOD = """
sources:
  - name: crm
    kind: crm
    path: crm.csv
    id: contact_id
    columns:
      email: email
"""


def test_sample_config_loads_with_paths_relative_to_it():
    config = load_config(ROOT / "configs" / "sample.yaml")
    assert [s.name for s in config.sources] == ["crm", "orders", "social", "tickets"]
    assert config.base_dir == (ROOT / "configs").resolve()


def test_misspelt_key_is_named_with_file_and_suggestion(tmp_path: Path):
    path = write(tmp_path / "c.yaml", GOOD.replace("columns:", "colums:"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [
        f"{path}: sources[0].colums: unknown key; did you mean 'columns'?"
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path):
    text = GOOD.replace("kind: crm", "kind: crmm").replace("email: email", "emial: email")
    text += "matching:\n  treshold: 3\n"
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = "\n".join(err.value.problems)
    assert (
        "sources[0].kind: Input should be 'crm', 'transactions', 'social' or 'support'; "
        "did you mean 'crm'?" in problems
    )
    assert "sources[0].columns: 'emial' is not a canonical field; did you mean 'email'?" in problems
    assert "matching.treshold: unknown key" in problems
    assert len(err.value.problems) == 3


def test_missing_required_key(tmp_path: Path):
    path = write(tmp_path / "c.yaml", "sources:\n  - name: crm\n    path: a.csv\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}: sources[0].kind: required key is missing"]


def test_invalid_yaml_names_the_line(tmp_path: Path):
    path = write(tmp_path / "c.yaml", "sources:\n  - name: [crm\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}:3: invalid YAML")


def test_a_config_not_in_utf8_names_its_first_bad_line(tmp_path: Path):
    """Saved in latin-1 (a French column name): which line, of a long config, to fix."""
    path = write(tmp_path / "c.yaml", GOOD + "      first_name: prénom\n", encoding="latin-1")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}:9: config is not UTF-8 text; save it as UTF-8"]


def test_duplicate_source_names(tmp_path: Path):
    path = write(tmp_path / "c.yaml", GOOD + GOOD.split("sources:\n")[1])
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}: source name 'crm' is used twice"]


@pytest.mark.parametrize(
    ("text", "key", "region"),
    [
        (GOOD + "standardize:\n  phone_region: XX\n", "standardize.phone_region", "XX"),
        # A source's own region was taken as given: every phone without + then became NULL.
        (GOOD.replace("    id: contact_id\n", "    id: contact_id\n    phone_region: usa\n"),
         "sources[0].phone_region", "USA"),
    ],
)  # fmt: skip
def test_bad_phone_region(tmp_path: Path, text: str, key: str, region: str):
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [
        f"{path}: {key}: '{region}' is not a phone region (ISO 3166 alpha-2, e.g. US, GB)"
    ]


def test_survivorship_sources_name_a_source_or_a_kind(tmp_path: Path):
    rules = (
        "profile:\n  survivorship:\n    email: {rule: source_priority, sources: [crn, social]}\n"
    )
    path = write(tmp_path / "c.yaml", GOOD + rules)
    # Checked when a run starts, not when the config loads: an update's config may leave
    # out sources its previous runs read.
    with pytest.raises(ConfigError) as err:
        load_config(path).check_survivorship()
    assert err.value.problems == [
        f"{path}: profile.survivorship.email.sources: 'crn' is neither a source nor a kind; "
        "did you mean 'crm'?"
    ]
    load_config(path).check_survivorship(("crn",))
    load_config(write(tmp_path / "c.yaml", GOOD + rules.replace("crn", "crm"))).check_survivorship()


def test_unknown_blocking_key_and_comparison(tmp_path: Path):
    text = GOOD + "matching:\n  blocking: [[emial_std]]\n  comparisons: [frist_name]\n"
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = "\n".join(err.value.problems)
    assert (
        "matching.blocking[0].keys: 'emial_std' is not a key; did you mean 'email_std'?" in problems
    )
    assert (
        "matching.comparisons: 'frist_name' is not a comparison; did you mean 'first_name'?"
        in problems
    )


def test_config_hash_ignores_location(tmp_path: Path):
    a = load_config(write(tmp_path / "a" / "c.yaml", GOOD))
    b = load_config(write(tmp_path / "b" / "c.yaml", GOOD))
    assert a.digest() == b.digest()
    assert (
        a.digest()
        != load_config(write(tmp_path / "c.yaml", GOOD.replace("crm.csv", "x.csv"))).digest()
    )


def test_a_blocking_rule_is_a_list_of_keys_or_keys_with_a_one_sided_condition(tmp_path: Path):
    text = GOOD + (
        "matching:\n  blocking:\n    - [email_std]\n"
        "    - {keys: [first_name_key, city_std], one_side: no_surname}\n"
    )
    rules = load_config(write(tmp_path / "c.yaml", text)).matching.blocking
    assert [(r.keys, r.one_side) for r in rules] == [
        (["email_std"], None),
        (["first_name_key", "city_std"], "no_surname"),
    ]
    bad = text.replace("one_side: no_surname", "one_side: no_surnme")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path / "bad.yaml", bad))
    assert err.value.problems[0].startswith(
        f"{tmp_path / 'bad.yaml'}: matching.blocking[1].one_side: "
    )
    assert "no_surname" in err.value.problems[0]


def test_csv_quote_and_escape_are_single_characters(tmp_path: Path):
    text = GOOD.replace("    id:", "    quote: \"''\"\n    escape: ''\n    delimiter: ','\n    id:")
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [
        f"{path}: sources[0].quote: must be a single ASCII character",
        f"{path}: sources[0].escape: must be a single ASCII character",
    ]
    path.write_text(GOOD.replace("    id:", "    quote: ','\n    id:").replace(
        "path: crm.csv", "path: crm.csv\n    delimiter: ','"))  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [f"{path}: sources[0]: quote and delimiter are both ','"]
    path.write_text(GOOD.replace("    id:", "    quote: \"'\"\n    escape: '\\'\n    id:"))
    source = load_config(path).sources[0]
    assert (source.quote, source.escape) == ("'", "\\")


def test_a_csv_delimiter_quote_or_escape_is_not_a_line_break(tmp_path: Path):
    """A line break ends a record: taken as a delimiter, it made the header one column."""
    text = GOOD.replace("    id:", '    delimiter: "\\n"\n    quote: "\\r"\n    id:')
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.problems == [
        f"{path}: sources[0].delimiter: must not be a line break",
        f"{path}: sources[0].quote: must not be a line break",
    ]


# Through the CLI: a config mistake is one line naming the file, the line or key, and exit 1.


def _plan(cli, tmp_path: Path, text: str):
    write(tmp_path / "crm.csv", "contact_id,email\n1,a@example.com\n2,b@example.com\n")
    path = write(tmp_path / "c.yaml", text)
    return path, cli("plan", "--config", path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # PyYAML keeps the last of two equal keys: the first threshold was silently dropped.
        ("matching:\n  threshold: 0.5\nmatching:\n  threshold: 0.95\n",
         ":11: invalid YAML: key 'matching' is repeated (first at line 9); keep one of them"),
        # A date-like value that is no date escaped PyYAML as a ValueError: exit 2.
        ("profile:\n  as_of: 2025-13-01\n",
         ":10: invalid YAML: '2025-13-01' is not a date (month must be in 1..12)"),
    ],
)  # fmt: skip
def test_yaml_that_parses_wrongly_is_an_error_with_its_line(cli, tmp_path, extra, message):
    path, result = _plan(cli, tmp_path, GOOD + extra)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}{message}\n"


@pytest.mark.parametrize(
    ("columns", "problem"),
    [
        ("email: []",
         "sources[0].columns.email: the list is empty; give a column, or a list of one or more"),
        ("email: [email, 5]",
         "sources[0].columns.email: item 2 of the list should be a column's name (text), not 5"),
        ("email: [email, email]",
         "sources[0].columns.email: lists 'email' twice; give each column once"),
        # Pieced together from two columns, a name or a street may be two people's or places'.
        ("email: email\n      first_name: [email, contact_id]",
         "sources[0].columns.first_name: takes one column, not a list (only email and phone "
         "take several)"),
    ],
)  # fmt: skip
def test_a_bad_list_of_columns_is_named_by_its_key(cli, tmp_path, columns, problem):
    path, result = _plan(cli, tmp_path, GOOD.replace("email: email", columns))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: {problem}\n"


def test_a_column_of_a_list_missing_from_the_file_is_named_by_its_place(cli, tmp_path: Path):
    _, result = _plan(cli, tmp_path, GOOD.replace("email: email", "email: [email, e_mail2]"))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {tmp_path / 'crm.csv'}: sources[0].columns.email[1]: column 'e_mail2' not "
        "found in crm.csv; did you mean 'email'?\n"
    )


def test_a_list_of_columns_is_kept_as_given_and_one_column_as_before(tmp_path: Path):
    listed = load_config(
        write(tmp_path / "c.yaml", GOOD.replace("email: email", "phone: [Work phone, Mobile]"))
    )
    assert listed.sources[0].columns == {"phone": ["Work phone", "Mobile"]}
    assert listed.sources[0].columns_of("phone") == ("Work phone", "Mobile")
    single = load_config(write(tmp_path / "d.yaml", GOOD)).sources[0]
    assert single.columns == {"email": "email"} and single.columns_of("email") == ("email",)
    assert single.columns_of("phone") == ()


def test_a_key_repeated_inside_a_source_is_an_error(cli, tmp_path: Path):
    path, result = _plan(cli, tmp_path, GOOD + "      email: contact_id\n")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {path}:9: invalid YAML: key 'email' is repeated (first at line 8); "
        "keep one of them\n"
    )


def test_a_source_may_take_another_sources_keys_by_a_yaml_merge_key(tmp_path: Path):
    """`<<: *crm` (two exports of one system, mapped alike) stopped with 'could not
    determine a constructor for the tag ...merge': the repeated-key check read the merge
    key as a key. The keys given beside it win; a key given twice is still an error."""
    text = (
        "sources:\n  - &crm\n    name: crm\n    kind: crm\n    path: crm.csv\n"
        "    id: contact_id\n    columns: {email: email}\n"
        "  - <<: *crm\n    name: crm_eu\n    path: crm_eu.csv\n"
    )
    config = load_config(write(tmp_path / "m.yaml", text))
    assert [(s.name, s.path, s.id, s.columns) for s in config.sources] == [
        ("crm", "crm.csv", "contact_id", {"email": "email"}),
        ("crm_eu", "crm_eu.csv", "contact_id", {"email": "email"}),
    ]
    with pytest.raises(ConfigError, match="key 'name' is repeated"):
        load_config(write(tmp_path / "n.yaml", text + "    name: again\n"))


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        # The model holds one m and u per comparison: a repeat raised a ValueError, exit 2.
        ("matching:\n  comparisons: [email, phone, email]\n",
         "matching.comparisons: 'email' is listed twice"),
        # Where the config lives is set by the loader: these keys were overwritten unseen.
        ("base_dir: /etc\n", "base_dir: unknown key"),
        # DuckDB reads a negative size as no limit at all, and 'lots' failed only at run time,
        # without naming the key.
        ("engine:\n  memory_limit: -1GB\n",
         "engine.memory_limit: '-1GB' is negative; give a size like '8GB'"),
        ("engine:\n  memory_limit: lots\n",
         "engine.memory_limit: 'lots' is not a size like '8GB'"),
        # DuckDB starts every thread at once: 100000 hung the run.
        ("engine:\n  threads: 100000\n",
         "engine.threads: give at most 1024 threads (DuckDB starts them all at once)"),
        ("engine:\n  threads: 0\n", "engine.threads: give at least 1 thread"),
        # Numbers are strict, as the gates' are: YAML's true was read as 1, the text '2' as 2.
        ("matching:\n  max_iterations: true\n",
         "matching.max_iterations: should be a whole number, not true"),
        ("engine:\n  threads: '2'\n", "engine.threads: should be a whole number, not text ('2')"),
        ("matching:\n  threshold: '0.5'\n",
         "matching.threshold: should be a number, not text ('0.5')"),
        ("profile:\n  currency:\n    base: USD\n    rates: {EUR: true}\n",
         "profile.currency.rates.EUR: should be a number, not true"),
        ("profile:\n  experience:\n    csat_weight: .inf\n",
         "profile.experience.csat_weight: should be a finite number, not inf"),
        ("matching:\n  max_block_size: 2.5\n",
         "matching.max_block_size: should be a whole number, not 2.5"),
        # True/false settings are strict too: 1, 'no' and 'yes-ish' were read as booleans
        # (or refused as 'Input should be a valid boolean', without saying what was given).
        ("standardize:\n  dayfirst: 1\n", "standardize.dayfirst: should be true or false, not 1"),
        ("output:\n  state: 'no'\n",
         "output.state: should be true or false, not text ('no'); write false"),
        ("output:\n  hash_pii: 0\n", "output.hash_pii: should be true or false, not 0"),
        ("matching:\n  guards:\n    dob: yes-ish\n",
         "matching.guards.dob: should be true or false, not text ('yes-ish')"),
        ("matching:\n  guards:\n    first_name: 'true'\n",
         "matching.guards.first_name: should be true or false, not text ('true')"),
        ("matching:\n  guards:\n    suffix: 1\n",
         "matching.guards.suffix: should be true or false, not 1"),
        ("matching:\n  guards:\n    national_id: null\n",
         "matching.guards.national_id: should be true or false, not nothing (null)"),
        # block.py takes the smaller limit: a rule's larger one was ignored without a word.
        ("matching:\n  max_block_size: 100\n  blocking:\n    - [email_std]\n"
         "    - {keys: [phone], max_block_size: 500}\n",
         "matching.blocking[1].max_block_size: 500 is above matching.max_block_size (100), "
         "which limits every rule; give at most 100, or raise matching.max_block_size"),
        # A fit that has not settled after 10000 iterations will not; a huge limit on one
        # that never settles ran for hours and wrote every iteration into model.json.
        ("matching:\n  max_iterations: 1000000000\n",
         "matching.max_iterations: give at most 10000 (EM settles within tens of iterations; "
         "each one costs time and a line of the model's history)"),
        # DuckDB could not bind it: an internal error, exit 2.
        ("matching:\n  max_records_per_value: 10000000000000000000000000000000000000000\n",
         "matching.max_records_per_value: give at most 1000000000 (a value on more records "
         "than that is junk in any data)"),
        ("matching:\n  max_block_size: 100000000000000000000000000000000000000000\n",
         "matching.max_block_size: Input should be less than or equal to 100000"),
        ("matching:\n  guards:\n    max_emails: 100000000000000000000000000000000000000000\n",
         "matching.guards.max_emails: Input should be less than or equal to 10000"),
        # A misspelt choice had no suggestion, where a misspelt key has one.
        ("profile:\n  survivorship:\n    phone: {rule: most_recnt}\n",
         "profile.survivorship.phone.rule: Input should be 'most_recent', 'most_frequent', "
         "'source_priority', 'longest' or 'first_non_null'; did you mean 'most_recent'?"),
        ("output:\n  compression: lz4\n",
         "output.compression: Input should be 'zstd', 'snappy', 'gzip' or 'uncompressed'"),
        # Without a rule no two records are compared: the run linked nothing, without a word.
        ("matching:\n  blocklist: [+15550000000]\n",
         "matching.blocklist[0]: should be text, not 15550000000; put it in quotes, or YAML "
         "reads it as a number"),
        ("matching:\n  blocking: []\n",
         "matching.blocking: no rule: no two records would be compared, and each would be a "
         "customer of its own; give at least one rule, or leave blocking out for the default "
         "rules"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_named_by_its_key(cli, tmp_path, extra, problem):
    path, result = _plan(cli, tmp_path, GOOD + extra)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: {problem}\n"


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        # An empty path was resolved to the config's folder: "file not found: <folder>".
        ("path: ''", "sources[0].path: is empty; give the export's file or glob"),
        ("path: ' '", "sources[0].path: is empty; give the export's file or glob"),
        ("path: crm.csv\n    dayfirst: 'yes'",
         "sources[0].dayfirst: should be true or false, not text ('yes'); write true"),
        # A text setting given something else was 'Input should be a valid string'.
        ("path: null", "sources[0].path: should be text, not nothing (null)"),
        ("path:", "sources[0].path: should be text, not nothing (null)"),
        ("path: [crm.csv]", "sources[0].path: should be text, not a list"),
        ("path: crm.csv\n    phone_region: true",
         "sources[0].phone_region: should be text, not true; put it in quotes, or YAML reads "
         "it as true/false"),
    ],
)  # fmt: skip
def test_a_bad_source_setting_is_named_by_its_key(cli, tmp_path, setting, problem):
    path, result = _plan(cli, tmp_path, GOOD.replace("path: crm.csv", setting))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: {problem}\n"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        # 0 was taken for unset (all cores); a negative count reached DuckDB: exit 2.
        ("CXUNIFY_THREADS", "0", "CXUNIFY_THREADS='0': give at least 1 thread"),
        ("CXUNIFY_THREADS", "-3", "CXUNIFY_THREADS='-3': give at least 1 thread"),
        ("CXUNIFY_THREADS", "100000",
         "CXUNIFY_THREADS='100000': give at most 1024 threads (DuckDB starts them all at once)"),
        ("CXUNIFY_MEMORY_LIMIT", "-1GB",
         "CXUNIFY_MEMORY_LIMIT: '-1GB' is negative; give a size like '8GB'"),
    ],
)  # fmt: skip
def test_bad_engine_settings_in_the_environment(
    cli, tmp_path, monkeypatch, variable, value, message
):
    monkeypatch.setenv(variable, value)
    _, result = _plan(cli, tmp_path, GOOD)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {message}\n"


def test_whole_numbers_are_taken_where_a_fraction_may_be_given(tmp_path: Path):
    text = GOOD + (
        "profile:\n  currency:\n    base: USD\n    rates: {EUR: 1}\n"
        "  experience: {csat_scale: [0, 10], csat_weight: 1, resolution_target_hours: 24}\n"
    )
    profile = load_config(write(tmp_path / "c.yaml", text)).profile
    assert profile.currency.rates == {"EUR": 1.0}
    assert profile.experience.csat_scale == (0.0, 10.0)
    assert (profile.experience.csat_weight, profile.experience.resolution_target_hours) == (1, 24)


@pytest.mark.parametrize("columns", ["    columns: {}\n", ""])
def test_a_source_that_maps_no_column_is_an_error(cli, tmp_path: Path, columns: str):
    # Its rows have nothing to link by: each was a customer of its own, without a word.
    text = GOOD.replace("    columns:\n      email: email\n", columns)
    path, result = _plan(cli, tmp_path, text)
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {path}: sources[0].columns: no column is mapped, so each row would be a "
        "customer with nothing but its id; map the file's columns to fields (email: e_mail)\n"
    )


def test_a_limit_below_the_default_rules_own_limits_is_taken(tmp_path: Path):
    # The default rules on names stop at 30; they are not the user's to lower.
    path = write(tmp_path / "c.yaml", GOOD + "matching:\n  max_block_size: 20\n")
    assert load_config(path).matching.max_block_size == 20
    text = GOOD + "matching:\n  blocking:\n    - {keys: [phone], max_block_size: 1000}\n"
    assert load_config(write(tmp_path / "c.yaml", text)).matching.blocking[0].max_block_size == 1000


def test_matching_limits_up_to_their_limit_are_taken(tmp_path: Path):
    text = GOOD + "matching:\n  max_iterations: 10000\n  max_records_per_value: 1000000000\n"
    matching = load_config(write(tmp_path / "c.yaml", text)).matching
    assert (matching.max_iterations, matching.max_records_per_value) == (10000, 1000000000)


def test_threads_up_to_the_limit_are_taken(tmp_path: Path):
    path = write(tmp_path / "c.yaml", GOOD + "engine:\n  threads: 1024\n")
    assert load_config(path).engine.threads == 1024


def test_a_config_that_is_a_folder_says_so(cli, tmp_path: Path):
    result = cli("plan", "--config", tmp_path)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path}: is a folder, not a config file\n"


def test_init_without_input_does_not_offer_a_config(cli):
    # init takes no --config; the message shared with unify offered one.
    result = cli("init")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no input: give at least one of --crm/--transactions/--social/--support\n"
    )


@pytest.mark.parametrize("command", ["init", "plan"])
def test_a_bad_phone_region_flag_is_named_as_the_flag(cli, tmp_path: Path, command: str):
    # Without a config it was reported as `<flags>: standardize.phone_region`, after the
    # exports had been read.
    write(tmp_path / "crm.csv", "contact_id,email\n1,a@example.com\n")
    result = cli(command, "--crm", tmp_path / "crm.csv", "--phone-region", "XX")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --phone-region: 'XX' is not a phone region (ISO 3166 alpha-2, e.g. US, GB)\n"
    )


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        # Every key under a section commented out leaves it null.
        ("gates:\n", "gates: should be a mapping of keys, not nothing (null)"),
        ("matching:\n  blocking:\n    - email_std\n",
         "matching.blocking[0]: a rule is a list of keys ([email_std]) or a mapping "
         "(keys: ...), not a text"),
    ],
)  # fmt: skip
def test_a_section_of_the_wrong_shape_is_not_described_by_a_class_name(
    cli, tmp_path, extra, problem
):
    # Pydantic said "Input should be a valid dictionary or instance of GatesConfig".
    path, result = _plan(cli, tmp_path, GOOD + extra)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: {problem}\n"


def test_yes_no_on_and_off_are_text_as_yaml_1_2_reads_them(tmp_path: Path):
    """YAML 1.1 (PyYAML) read them as booleans: `phone_region: NO` (Norway) was false, a
    column named `no` or `on` the boolean false or true, and each an error or a lost key."""
    text = GOOD.replace(
        "      email: email\n", "      email: email\n      state: no\n      city: on\n"
    )
    text += "standardize:\n  phone_region: NO\n  dayfirst: TRUE\nmatching:\n  blocklist: [Y, off]\n"
    config = load_config(write(tmp_path / "c.yaml", text))
    assert config.sources[0].columns == {"email": "email", "state": "no", "city": "on"}
    assert (config.standardize.phone_region, config.standardize.dayfirst) == ("NO", True)
    assert config.matching.blocklist == ["Y", "off"]
    # Numbers as YAML 1.2 writes them: a leading zero is no octal, 1e3 is a number.
    extra = "matching:\n  max_iterations: 010\n  threshold: 5e-1\n"
    numbers = load_config(write(tmp_path / "n.yaml", GOOD + extra)).matching
    assert (numbers.max_iterations, numbers.threshold) == (10, 0.5)


def test_a_true_false_setting_given_yes_or_no_says_which_to_write(cli, tmp_path: Path):
    path, result = _plan(cli, tmp_path, GOOD + "output:\n  state: no\n  hash_pii: On\n")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {path}: output.state: should be true or false, not text ('no'); write false\n"
        f"Error: {path}: output.hash_pii: should be true or false, not text ('On'); write true\n"
    )


def test_spark_settings_may_be_numbers_and_booleans(tmp_path: Path):
    # Spark takes its settings as text; `cores: 4` was refused as 'Input should be a valid string'.
    text = GOOD + (
        "spark:\n  conf:\n    spark.executor.cores: 4\n    spark.memory.fraction: 0.6\n"
        "    spark.ui.enabled: false\n    spark.executor.memory: 8g\n"
    )
    assert load_config(write(tmp_path / "c.yaml", text)).spark.conf == {
        "spark.executor.cores": "4",
        "spark.memory.fraction": "0.6",
        "spark.ui.enabled": "false",
        "spark.executor.memory": "8g",
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [("[1, 2]", "should be text, a number or true/false, not a list"),
     ("{cores: 4}", "should be text, a number or true/false, not a mapping"),
     ("", "should be text, a number or true/false, not nothing (null)"),
     (".inf", "should be a finite number, not inf")],
)  # fmt: skip
def test_a_spark_setting_of_another_shape_is_named_by_its_key(cli, tmp_path, value, problem):
    text = GOOD + f"spark:\n  conf:\n    spark.executor.cores: {value}\n"
    path, result = _plan(cli, tmp_path, text)
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: spark.conf.spark.executor.cores: {problem}\n"


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [("name: crm", "name:", "sources[0].name: should be text, not nothing (null)"),
     ("id: contact_id", "id: 7",
      "sources[0].id: should be text, not 7; put it in quotes, or YAML reads it as a number")],
)  # fmt: skip
def test_a_source_name_or_id_that_is_not_text_says_what_it_is(cli, tmp_path, old, new, problem):
    path, result = _plan(cli, tmp_path, GOOD.replace(old, new))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: {problem}\n"


def test_an_id_of_nothing_is_no_id_column(tmp_path: Path):
    # id is optional: null is the default, rows identified by their row number.
    path = write(tmp_path / "c.yaml", GOOD.replace("id: contact_id", "id: null"))
    assert load_config(path).sources[0].id is None
