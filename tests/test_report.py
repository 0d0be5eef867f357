"""`cxunify report`: one self-contained HTML file whose charts render in a real browser."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT, small_output, write

CORE_CHARTS = [
    "records_per_source",
    "source_overlap",
    "match_weights",
    "m_u",
    "cluster_sizes",
    "completeness",
    "rejects",
]
TRAIT_CHARTS = ["rfm", "stages", "experience"]
TRAIT_COLUMNS = ("rfm_segment", "lifecycle_stage", "journey_stage", "csat_mean", "sentiment_mean")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def traits_out(sample_out: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample output with the profile traits of the contract (rfm_segment,
    lifecycle_stage, journey_stage, csat_mean, sentiment_mean); made up from n_records when
    the profile stage does not write them yet."""
    out = tmp_path_factory.mktemp("traits") / "out"
    shutil.copytree(sample_out, out)
    if set(TRAIT_COLUMNS) <= _columns(out):
        return out
    profiles = out / "profiles.parquet"
    present = sorted(set(TRAIT_COLUMNS) & _columns(out))
    keep = f"* EXCLUDE ({', '.join(present)})" if present else "*"
    duckdb.sql(
        f"""
        COPY (SELECT {keep},
                     ['champions', 'loyal', 'at risk', 'hibernating'][1 + n_records % 4]
                         AS rfm_segment,
                     ['new', 'active', 'lapsed'][1 + n_records % 3] AS lifecycle_stage,
                     ['awareness', 'purchase', 'support', 'advocacy'][1 + n_records % 4]
                         AS journey_stage,
                     CASE WHEN n_records > 2 THEN 1 + n_records % 5 END::DOUBLE AS csat_mean,
                     CASE WHEN n_records > 1 THEN (n_records % 3 - 1) / 2 END::DOUBLE
                         AS sentiment_mean
              FROM '{profiles}') TO '{out}/profiles.tmp.parquet' (FORMAT parquet)
        """
    )
    (out / "profiles.tmp.parquet").replace(profiles)
    return out


def test_report_on_the_sample(cli, sample_out: Path, tmp_path: Path):
    path = tmp_path / "report.html"
    result = cli("report", "--out", sample_out, "--to", path, "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    # Until the profile stage writes the traits, their charts are left out with a note.
    columns = {c[0] for c in duckdb.sql(f"DESCRIBE '{sample_out}/profiles.parquet'").fetchall()}
    expected = CORE_CHARTS + (TRAIT_CHARTS if set(TRAIT_COLUMNS) <= columns else [])
    assert summary["charts"] == expected
    assert summary["bytes"] == path.stat().st_size
    page = path.read_text()
    assert re.findall(r"data-chart='([a-z_]+)'", page) == expected
    # Self-contained: plotly.js is inlined and nothing is fetched from anywhere.
    assert "<script src" not in page and "<link" not in page
    assert page.count("Plotly.newPlot(") == len(expected)
    assert set(summary["skipped"]) == set(CORE_CHARTS + TRAIT_CHARTS) - set(expected)


def test_charts_left_out_say_why(cli, sample_out: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(sample_out, out)
    duckdb.sql(
        f"COPY (SELECT * EXCLUDE ({', '.join(TRAIT_COLUMNS)}) FROM '{out}/profiles.parquet') "
        f"TO '{out}/p.parquet' (FORMAT parquet)"
        if set(TRAIT_COLUMNS) <= _columns(out)
        else f"COPY (FROM '{out}/profiles.parquet') TO '{out}/p.parquet' (FORMAT parquet)"
    )
    (out / "p.parquet").replace(out / "profiles.parquet")
    # A name with brackets was read as markup: '[bold]' vanished, '[/draft]' an internal error.
    path = tmp_path / "[/draft] [bold]report.html"
    result = cli("report", "--out", out, "--to", path)
    assert result.exit_code == 0, result.stderr
    assert f"✓ {len(CORE_CHARTS)} charts → {path} (" in result.stderr
    assert "Note: chart 'rfm' left out: profiles.parquet has no rfm_segment" in result.stderr
    page = path.read_text()
    assert re.findall(r"data-chart='([a-z_]+)'", page) == CORE_CHARTS
    assert "experience: profiles.parquet has no journey_stage, csat_mean, sentiment_mean" in page


def _columns(out: Path) -> set[str]:
    return {c[0] for c in duckdb.sql(f"DESCRIBE '{out}/profiles.parquet'").fetchall()}


def test_report_text_output_and_default_path(cli, traits_out: Path):
    result = cli("report", "--out", traits_out)
    assert result.exit_code == 0, result.stderr
    assert f"10 charts → {traits_out / 'report.html'}" in result.stderr
    assert "left out" not in result.stderr
    page = (traits_out / "report.html").read_text()
    assert re.findall(r"data-chart='([a-z_]+)'", page) == CORE_CHARTS + TRAIT_CHARTS


def test_report_without_an_output_folder(cli, tmp_path: Path):
    result = cli("report", "--out", tmp_path / "nothing")
    assert result.exit_code == 1
    missing = tmp_path / "nothing"
    assert result.stderr.strip() == f"Error: {missing}: no such output folder"
    # A folder that is there, without the output's files:
    missing.mkdir()
    result = cli("report", "--out", missing)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {missing}: no profiles.parquet; run cxunify unify (this version) first"
    )


@pytest.mark.parametrize("under", ["r.html", "sub/r.html"])
def test_build_report_in_a_folder_that_is_a_file_is_an_output_error(
    sample_out: Path, tmp_path: Path, monkeypatch, under: str
):
    """The API raised mkdir's bare FileExistsError (NotADirectoryError deeper down), after
    building every chart; the CLI alone said what it meant."""
    from cxunify import report
    from cxunify.errors import OutputError

    def no_chart(*args):
        raise AssertionError("a chart was built before the target was checked")

    monkeypatch.setattr(report, "CHARTS", {"records": no_chart})
    a_file = write(tmp_path / "afile", "x")
    with pytest.raises(OutputError) as error:
        report.build_report(sample_out, a_file / under)
    in_a_file = "is a file, not a folder: nothing can be written inside it"
    assert str(error.value) == f"{a_file}: {in_a_file}"


# --- in a real browser -------------------------------------------------------------------------


def _load(browser, path: Path) -> None:
    """Open the report at `path`; Plotly draws asynchronously: wait until every chart has its
    SVG."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(path.resolve().as_uri())
    WebDriverWait(browser, 30).until(
        lambda b: b.execute_script(
            "return Array.from(document.querySelectorAll('.cx-chart'))"
            ".every(c => c.querySelector('svg.main-svg'))"
        )
    )


def _browser():
    """Headless Debian chromium driven by selenium, or a skip (a failure in CI) saying why."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [
        name for name, found in (("chromium", chromium), ("chromedriver", driver)) if not found
    ]
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        missing.append("selenium")
    if missing:
        reason = f"no {', '.join(missing)} installed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") or os.environ.get("CXUNIFY_REQUIRE_BROWSER"):
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1200,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


# Per chart: SVG layers drawn, their size, and the marks (bars, heatmap image) inside.
RENDERED = """
return Array.from(document.querySelectorAll('.cx-chart')).map(chart => {
  const svg = chart.querySelector('svg.main-svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {key: chart.dataset.chart, width: box.width, height: box.height,
          marks: chart.querySelectorAll('.point path, .bars path, .hm image').length,
          traces: (chart.data || []).length};
});
"""


def test_every_chart_renders_in_a_browser_without_errors(cli, traits_out: Path):

    path = traits_out / "browser-report.html"
    assert cli("report", "--out", traits_out, "--to", path).exit_code == 0
    browser = _browser()
    try:
        _load(browser, path)
        charts = browser.execute_script(RENDERED)
        errors = [
            entry for entry in browser.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")
        ]
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1200, height)
        ARTIFACTS.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "report.png"))
    finally:
        browser.quit()
    assert [c["key"] for c in charts] == CORE_CHARTS + TRAIT_CHARTS
    for chart in charts:
        assert chart["width"] > 100 and chart["height"] > 100, chart
        assert chart["traces"] > 0 and chart["marks"] > 0, chart
    assert errors == []
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_a_run_json_that_is_not_an_object_is_a_user_error(cli, sample_out: Path, tmp_path: Path):
    """run.json holding JSON that is not an object was an internal error (exit 2)."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(sample_out, out)
    (out / "run.json").write_text("[]")
    result = cli("report", "--out", out, "--to", tmp_path / "r.html")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {out / 'run.json'}: not a readable run manifest; run cxunify unify again\n"
    )


def test_a_run_json_of_wrong_types_is_a_user_error(cli, sample_out: Path, tmp_path: Path):
    """A weight without its level in a hand-edited run.json was an internal error (exit 2,
    KeyError: 'level'); "matching": null one too (AttributeError)."""
    out = tmp_path / "out"
    out.mkdir()
    for path in sample_out.glob("*.parquet"):
        (out / path.name).symlink_to(path)
    run = json.loads((sample_out / "run.json").read_text())
    for damaged, problem in (
        ({"model": {"weights": [{"comparison": "email"}]}}, "model.weights[0]: no level"),
        ({"matching": None}, "matching: not an object"),
    ):
        (out / "run.json").write_text(json.dumps(run | damaged))
        result = cli("report", "--out", out, "--to", tmp_path / "r.html")
        assert (result.exit_code, result.stderr) == (
            1,
            f"Error: {out / 'run.json'}: not a readable run manifest ({problem}); run cxunify "
            "unify again\n",
        )


def test_an_output_without_rejects_parquet_does_not_claim_no_rejects(
    cli, sample_out: Path, tmp_path: Path
):
    """Without rejects.parquet (copied without it, or deleted), the chart said 'no rows were
    rejected' though run.json counts the sample's rejected rows."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(sample_out, out)
    (out / "rejects.parquet").unlink()
    result = cli("report", "--out", out, "--to", tmp_path / "r.html", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert "rejects" not in summary["charts"]
    assert summary["skipped"]["rejects"] == "the output has no rejects.parquet"
    assert "no rows were rejected" not in (tmp_path / "r.html").read_text()


def test_an_output_without_ratings_or_texts_says_so_on_its_experience_chart(
    cli, sample_out: Path, tmp_path: Path
):
    """Febrl's output, or a CRM's alone, drew the CSAT and sentiment chart as empty axes, as if
    it had failed; each side now says what the output lacks. The sample has both."""
    out = small_output(tmp_path)
    result = cli("report", "--out", out, "--to", tmp_path / "r.html")
    assert result.exit_code == 0, result.stderr
    page = (tmp_path / "r.html").read_text()
    assert "no ticket has a CSAT rating" in page and "no ticket or post has a text" in page
    result = cli("report", "--out", sample_out, "--to", tmp_path / "s.html")
    assert result.exit_code == 0, result.stderr
    page = (tmp_path / "s.html").read_text()
    assert "no ticket has a CSAT rating" not in page and "no ticket or post has a text" not in page


def test_the_header_says_what_its_link_count_counts(cli, sample_out: Path, tmp_path: Path):
    """'links 13,311' read as the rows of links.parquet, which are 18,730 with the near misses:
    the figure is of the pairs at or above the threshold, merge guards' refusals among them."""
    counts = json.loads((sample_out / "run.json").read_text())["counts"]
    [(above, refused)] = duckdb.sql(
        "SELECT count(*) FILTER (above_threshold), count(*) FILTER (guard IS NOT NULL) "
        f"FROM '{sample_out}/links.parquet'"
    ).fetchall()
    assert (counts["links"], counts["links_refused_by_guards"]) == (above, refused)
    assert cli("report", "--out", sample_out, "--to", tmp_path / "r.html").exit_code == 0
    page = (tmp_path / "r.html").read_text()
    assert (
        "<tr><td>links at or above the threshold (those merge guards refused included)</td>"
        f"<td class='n'>{above:,}</td></tr>"
        f"<tr><td>links refused by merge guards</td><td class='n'>{refused:,}</td></tr>"
    ) in page
    assert "<td>links</td>" not in page


def _figure(page: str, key: str) -> dict:
    """The Plotly figure (data and layout) the page draws as chart `key`."""
    found = re.search(
        rf"Plotly\.newPlot\('chart-{key}'.*?\}}\)\((\{{.*?\}})\);</script>", page, re.DOTALL
    )
    assert found, key
    return json.loads(found[1])


def test_stages_are_drawn_in_their_own_order(cli, sample_out: Path, tmp_path: Path):
    """The lifecycle and journey charts, and CSAT and sentiment by journey stage, were sorted
    by how many customers each stage has (loyalty, research, comparison, ...), or by name:
    a reader follows a funnel in its own order."""
    assert cli("report", "--out", sample_out, "--to", tmp_path / "r.html").exit_code == 0
    page = (tmp_path / "r.html").read_text()
    lifecycle = ["prospect", "new", "active", "at_risk", "lapsed"]
    journey = ["research", "comparison", "purchase", "support", "loyalty"]
    stages = _figure(page, "stages")["data"]
    assert [trace["x"] for trace in stages] == [lifecycle, journey]
    assert [trace["x"] for trace in _figure(page, "experience")["data"]] == [journey, journey]
    # RFM segments best to worst, as the README's profiles table lists them (those the sample
    # holds: "(none)", the customers without orders, last).
    (segments,) = [trace["x"] for trace in _figure(page, "rfm")["data"]]
    readme = (ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| rfm_segment |"))
    listed = row.split("|")[3].split("(map below)")[0].strip().replace(" or ", ", ").split(", ")
    assert segments == [*listed, "(none)"]
    # A stage this version does not know goes after those it knows, and no stage last.
    from cxunify.report import _in_order

    rows = [("(none)", 1), ("dormant", 2), ("new", 3), ("prospect", 4)]
    assert [r[0] for r in _in_order(rows, lifecycle)] == ["prospect", "new", "dormant", "(none)"]


def test_the_header_names_the_runs_as_of(cli, sample_out: Path, tmp_path: Path):
    """Every stage, recency and RFM score is relative to run.json's as_of, which the report
    did not show: a report of a run with --as-of 2026-06-30 read as one of today's."""
    as_of = json.loads((sample_out / "run.json").read_text())["as_of"]
    assert as_of
    assert cli("report", "--out", sample_out, "--to", tmp_path / "r.html").exit_code == 0
    assert f" · traits as of {as_of} · " in (tmp_path / "r.html").read_text()
    # A run whose data holds no date has none.
    out = small_output(tmp_path)
    assert json.loads((out / "run.json").read_text())["as_of"] is None
    assert cli("report", "--out", out, "--to", tmp_path / "s.html").exit_code == 0
    assert " · traits as of none (no date in the data) · " in (tmp_path / "s.html").read_text()


LONG_ID = "maximilian.alexander.von.habsburg-lothringen@example-company.co.uk"
# An id column of a name longer than a line: its reason, 'duplicate id in ...', too.
LONG_COLUMN = "customer_reference_number_of_the_legacy_crm"


@pytest.fixture(scope="module")
def long_reason_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An output of three rows rejected as duplicate ids (one an email, of the long id
    column) for a reason longer than a line, and a customer of two records."""
    root = tmp_path_factory.mktemp("long-reason")
    write(
        root / "crm.csv",
        f"{LONG_COLUMN},email,first_name\n{LONG_ID},ann@gmail.com,Ann\n"
        f"{LONG_ID},ann@gmail.com,Ann\n2,ann@gmail.com,Ann\n3,bob@gmail.com,Bob\n"
        "3,bob@gmail.com,Bob\n3,bob@gmail.com,Bob\n",
    )
    config = write(
        root / "cfg.yaml",
        f"sources:\n  - {{name: crm, kind: crm, path: crm.csv, id: {LONG_COLUMN}, "
        "columns: {email: email, first_name: first_name}}\n",
    )
    from typer.testing import CliRunner

    from cxunify.cli import app

    out = root / "out"
    result = CliRunner().invoke(app, ["unify", "--config", str(config), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.stderr
    return out


def test_a_long_reject_reason_is_wrapped_and_hover_names_are_whole(
    cli, long_reason_out: Path, tmp_path: Path
):
    """A reason wider than the room beside the bars was cut off at the chart's left edge, and
    a trace's name in its hover label was cut to 15 characters ('refused by a...')."""
    reasons = duckdb.sql(
        f"SELECT reason FROM '{long_reason_out}/rejects.parquet' ORDER BY 1"
    ).fetchall()
    assert reasons == [
        (f"duplicate id 3 (first at row 4) in {LONG_COLUMN}",),
        (f"duplicate id 3 (first at row 4) in {LONG_COLUMN}",),
        (f"duplicate id {LONG_ID} (first at row 1) in {LONG_COLUMN}",),
    ]
    assert cli("report", "--out", long_reason_out, "--to", tmp_path / "r.html").exit_code == 0
    page = (tmp_path / "r.html").read_text()
    [bars] = _figure(page, "rejects")["data"]
    # One bar for the three rows, of the reason without its ids (a bar per id, before).
    reason = f"duplicate id in {LONG_COLUMN}"
    assert bars["x"] == [3] and bars["customdata"] == [reason]
    assert LONG_ID not in page
    [label] = bars["y"]
    lines = label.split("<br>")
    assert len(lines) > 1 and all(len(line) <= 40 for line in lines)
    assert "".join(lines).replace(" ", "") == reason.replace(" ", "")
    for key in re.findall(r"data-chart='([a-z_]+)'", page):
        assert _figure(page, key)["layout"]["hoverlabel"] == {"namelength": -1}, key


def test_labels_are_whole_in_a_narrow_window(cli, long_reason_out: Path, tmp_path: Path):
    path = tmp_path / "r.html"
    assert cli("report", "--out", long_reason_out, "--to", path).exit_code == 0
    browser = _browser()
    try:
        browser.set_window_size(700, 900)
        _load(browser, path)
        # Each tick label of the rejects chart, against the chart's own box.
        inside = browser.execute_script(
            """
            const chart = document.getElementById('chart-rejects');
            const box = chart.querySelector('svg.main-svg').getBoundingClientRect();
            return Array.from(chart.querySelectorAll('.ytick text')).map(t => {
              const r = t.getBoundingClientRect();
              return r.left >= box.left && r.right <= box.right;
            });
            """
        )
        hovered = browser.execute_script(
            """
            const chart = document.getElementById('chart-m_u');
            Plotly.Fx.hover(chart, [{curveNumber: 1, pointNumber: 0}]);
            return Array.from(chart.querySelectorAll('.hoverlayer text'))
              .map(t => t.textContent);
            """
        )
    finally:
        browser.quit()
    assert inside == [True]
    assert "u (different people)" in hovered


def test_source_names_are_text_not_markup(cli, tmp_path: Path):
    """Plotly reads tags in a label: a source named '<a href=...>crm</a>' (a file's name,
    without a config) drew a link in the records, overlap and completeness charts."""
    name = '<a href="https://evil.example/x">crm</a><b>B</b>'
    write(tmp_path / "crm.csv", "id,email,first_name\n1,ann@gmail.com,Ann\n2,ann@gmail.com,Ann\n")
    config = write(
        tmp_path / "cfg.yaml",
        f"sources:\n  - {{name: '{name}', kind: crm, path: crm.csv, id: id, "
        "columns: {email: email, first_name: first_name}}\n",
    )
    out = tmp_path / "out"
    assert cli("unify", "--config", config, "--out", out, "-q").exit_code == 0
    assert cli("report", "--out", out, "--to", tmp_path / "r.html").exit_code == 0
    page = (tmp_path / "r.html").read_text()
    escaped = '&lt;a href="https://evil.example/x"&gt;crm&lt;/a&gt;&lt;b&gt;B&lt;/b&gt;'
    assert _figure(page, "records_per_source")["data"][0]["x"] == [escaped]
    assert _figure(page, "source_overlap")["data"][0]["y"] == [escaped]
    assert _figure(page, "completeness")["data"][0]["y"] == [escaped]
    for key in re.findall(r"data-chart='([a-z_]+)'", page):
        assert "<a href" not in json.dumps(_figure(page, key)), key


def test_the_toolbar_covers_no_subplot_title(cli, sample_out: Path, tmp_path: Path):
    """Plotly's toolbar (zoom, download), shown at a chart's top right, lay over the right
    subplot's title of the stage and experience charts ('journey stage')."""
    path = tmp_path / "r.html"
    assert cli("report", "--out", sample_out, "--to", path).exit_code == 0
    browser = _browser()
    try:
        browser.set_window_size(1200, 900)
        _load(browser, path)
        overlaps = browser.execute_script(
            """
            const apart = (a, b) => a.right <= b.left || b.right <= a.left
                                    || a.bottom <= b.top || b.bottom <= a.top;
            return ['stages', 'experience'].map(key => {
              const chart = document.getElementById('chart-' + key);
              const bar = chart.querySelector('.modebar').getBoundingClientRect();
              const titles = Array.from(chart.querySelectorAll('.annotation-text'));
              return [titles.length,
                      titles.filter(t => !apart(bar, t.getBoundingClientRect())).length];
            });
            """
        )
    finally:
        browser.quit()
    assert overlaps == [[2, 0], [2, 0]]
