"""The analyst's HTML report: content, offline self-containment and resistance to injected markup."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import duckdb
import numpy as np
import plotly.graph_objects as go
import pyarrow as pa
import pytest

from distillguard.engines.local import AnalysisResult
from distillguard.evaluate.metrics import compute_metrics
from distillguard.evaluate.tables import PREDICTION_SCHEMA, TRUTH_SCHEMA
from distillguard.report.html import (
    MAX_MODELS,
    MAX_TABLE_ROWS,
    OTHER_MODELS,
    REASON_DESCRIPTIONS,
    SAMPLE_CHARS,
    TOP_ACCOUNTS,
    activity_spec,
    cluster_graph_spec,
    group_activity,
    spring_layout,
    write_report,
)
from distillguard.scoring.assign import CLUSTERS_SCHEMA
from distillguard.scoring.model import REASON_OF_FEATURE
from distillguard.signals.capability import CAPABILITIES
from distillguard.signals.exchange import SIGNALS_SCHEMA

EVIL_ACCOUNT = "acct</script><script>alert(1)</script>"
EVIL_IMG_ACCOUNT = '<img src=x onerror="alert(2)">'
QUOTED_ACCOUNT = 'o\'brien "&" co'
EVIL_MODEL = "model-v2</script><script>alert(3)</script>"
EVIL_CLUSTER = 'c-1"><script>alert(6)</script>'
EVIL_SAMPLE = "<img src=x onerror=alert(4)> what is 2+2? </textarea></script><script>alert(7)</script>"
EVIL_REASON = "reasoning-extraction;<svg onload=alert(5)>"
LEGIT_ACCOUNT = "legit-analytics-co"
START = datetime(2026, 2, 1, tzinfo=UTC)


class PageParser(HTMLParser):
    """Collects every element, attribute, script body and visible text of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def real_prompts(name: str, n: int) -> list[str]:
    """The first `n` prompts of one of the real corpora packaged with the simulator."""
    with (
        resources.files("distillguard.sim").joinpath("data", name).open("rb") as raw,
        gzip.open(raw, "rt") as fh,
    ):
        return [json.loads(line)["text"] for line, _ in zip(fh, range(n), strict=False)]


def signals_con(rows: list[tuple[str, datetime, str, int]]) -> duckdb.DuckDBPyConnection:
    """A `signals` table of the real schema holding (account_id, ts, model, capability) rows."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("empty", SIGNALS_SCHEMA.empty_table())
    con.execute("CREATE TABLE signals AS SELECT * FROM empty")
    con.unregister("empty")
    batch = pa.table(
        {
            "request_id": [f"r{i}" for i in range(len(rows))],
            "account_id": [r[0] for r in rows],
            "ts": pa.array([r[1] for r in rows], pa.timestamp("ms", tz="UTC")),
            "model": [r[2] for r in rows],
            "capability": pa.array([r[3] for r in rows], pa.int8()),
        }
    )
    con.register("batch", batch)
    con.execute(
        "INSERT INTO signals (request_id, account_id, ts, model, capability) "
        "SELECT request_id, account_id, ts, model, capability FROM batch"
    )
    con.unregister("batch")
    return con


def campaign_traffic() -> list[tuple[str, datetime, str, int]]:
    """Three campaign accounts pacing requests every 4 minutes for 30 hours, pivoting to a new
    model after 20 hours; one legitimate account with a working-day pattern."""
    coding, math = 0, min(1, len(CAPABILITIES) - 1)
    rows = []
    for account in (EVIL_ACCOUNT, EVIL_IMG_ACCOUNT, QUOTED_ACCOUNT):
        for i in range(450):
            ts = START + timedelta(minutes=4 * i)
            model = "model-v1" if i < 300 else EVIL_MODEL
            rows.append((account, ts, model, coding if i % 3 else math))
    for day in range(2):
        for i in range(40):
            rows.append(
                (LEGIT_ACCOUNT, START + timedelta(days=day, hours=9, minutes=10 * i), "model-v1", math)
            )
    return rows


def accounts_table(rows: list[dict]) -> pa.Table:
    return pa.table(
        {
            "account_id": pa.array([r["account_id"] for r in rows], pa.string()),
            "n_exchanges": pa.array([r["n"] for r in rows], pa.int64()),
            "log_exchanges": pa.array([float(np.log1p(r["n"])) for r in rows], pa.float64()),
            "gap_regularity": pa.array([r.get("gap", 0.5) for r in rows], pa.float64()),
            "risk": pa.array([r["risk"] for r in rows], pa.float64()),
            "flagged": pa.array([r["flagged"] for r in rows], pa.bool_()),
            "reasons": pa.array([r["reasons"] for r in rows], pa.string()),
            "cluster_id": pa.array([r.get("cluster") for r in rows], pa.string()),
        }
    )


@pytest.fixture(scope="module")
def campaign_result() -> AnalysisResult:
    accounts = accounts_table(
        [
            {"account_id": EVIL_ACCOUNT, "n": 450, "risk": 0.97, "flagged": True, "gap": 0.98,
             "reasons": "machine-timing;high-volume", "cluster": EVIL_CLUSTER},
            {"account_id": EVIL_IMG_ACCOUNT, "n": 450, "risk": 0.93, "flagged": True,
             "reasons": EVIL_REASON, "cluster": EVIL_CLUSTER},
            {"account_id": QUOTED_ACCOUNT, "n": 450, "risk": 0.41, "flagged": False,
             "reasons": "", "cluster": EVIL_CLUSTER},
            {"account_id": LEGIT_ACCOUNT, "n": 80, "risk": 0.02, "flagged": False, "reasons": ""},
        ]
    )  # fmt: skip
    clusters = pa.table(
        {
            "cluster_id": [EVIL_CLUSTER],
            "n_accounts": [3],
            "n_exchanges": [1350],
            "risk": [0.95],
            "capabilities": ["coding;<b>math</b>"],
            "reasons": ["coordinated-cluster;machine-timing"],
        },
        schema=CLUSTERS_SCHEMA,
    )
    return AnalysisResult(
        accounts=accounts,
        clusters=clusters,
        threshold=0.5,
        n_exchanges=1430,
        n_duplicates=2,
        rejected={"missing field account_id": 3, "<script>alert(8)</script>": 1},
        con=signals_con(campaign_traffic()),
    )


EDGES = pa.table(
    {
        "account_a": [EVIL_ACCOUNT, EVIL_ACCOUNT, EVIL_IMG_ACCOUNT],
        "account_b": [EVIL_IMG_ACCOUNT, QUOTED_ACCOUNT, QUOTED_ACCOUNT],
        "weight": [3.0, 2.0, 1.5],
        "kinds": ["payment_fingerprint;template", "<i onmouseover=alert(9)>tls</i>", "timing"],
    }
)


@pytest.fixture(scope="module")
def campaign_page(campaign_result: AnalysisResult, tmp_path_factory: pytest.TempPathFactory) -> str:
    samples = {
        EVIL_ACCOUNT: [*real_prompts("reasoning_orca_dpo_pairs_system_prompted.jsonl.gz", 3), "x" * 5000],
        EVIL_IMG_ACCOUNT: [EVIL_SAMPLE, *real_prompts("math_gsm8k_test.jsonl.gz", 2)],
    }
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(path, campaign_result, samples=samples, edges=EDGES, title="Campaign <b>review</b>")
    return path.read_text(encoding="utf-8")


def test_report_is_self_contained(campaign_page: str) -> None:
    page = parse(campaign_page)
    for tag, attrs in page.tags:
        assert "src" not in attrs or tag != "script", "no external script"
        assert not (tag == "link" and str(attrs.get("href", "")).startswith(("http:", "https:", "//")))
    # plotly.js is embedded once, inline.
    assert sum("plotly.js v" in s for s in page.scripts) == 1
    assert page.scripts and max(len(s) for s in page.scripts) > 1_000_000


def test_injected_markup_stays_text(campaign_page: str) -> None:
    page = parse(campaign_page)
    tags = {tag for tag, _ in page.tags}
    assert not tags & {"img", "svg", "iframe", "object", "embed", "textarea"}
    assert "b" not in tags and "i" not in tags  # from the title, capabilities and link kinds
    for _, attrs in page.tags:
        assert not [name for name in attrs if name.startswith("on")], attrs
    # Scripts: plotly.js, one per figure (two accounts, a cluster timeline and graph), the sorter.
    assert len(page.scripts) == 1 + 4 + 1
    # Raw injected tags appear nowhere, not even inside plotly's figure JSON.
    for needle in ("<script>alert", "<img src=x", "<svg onload", "<i onmouseover", "</textarea>"):
        assert needle not in campaign_page
    # ...yet the analyst reads the ids exactly as they are in the data.
    text = "".join(page.text)
    for value in (
        EVIL_ACCOUNT,
        EVIL_IMG_ACCOUNT,
        EVIL_CLUSTER,
        "<script>alert(8)</script>",
        "Campaign <b>review</b>",
    ):
        assert value in text


def test_figure_data_cannot_close_its_script(campaign_page: str) -> None:
    page = parse(campaign_page)
    figures = [s for s in page.scripts if "Plotly.newPlot" in s]
    assert len(figures) == 4
    for script in figures:
        assert "</" not in script and "<script" not in script.lower()
    # The malicious model name is in the legend, escaped for plotly's label markup, then by its JSON encoder.
    assert any("model-v2&lt;\\u002fscript&gt;&lt;script&gt;alert(3)" in s for s in figures)


def test_flagged_accounts_and_cluster_listed(campaign_page: str) -> None:
    assert "<th>exchanges analysed</th><td>1,430</td>" in campaign_page
    assert "<th>records rejected</th><td>4</td>" in campaign_page
    text = "".join(parse(campaign_page).text)
    flagged = text[text.index("Flagged accounts") : text.index("Top flagged accounts in detail")]
    assert EVIL_ACCOUNT in flagged and EVIL_IMG_ACCOUNT in flagged
    assert QUOTED_ACCOUNT not in flagged  # in the cluster but under the threshold
    assert LEGIT_ACCOUNT not in text  # neither flagged nor clustered
    assert "0.970" in flagged and "machine-timing" in flagged
    clusters = text[text.index("Members (3") :]
    assert QUOTED_ACCOUNT in clusters


def test_samples_truncated_and_escaped(campaign_page: str) -> None:
    page = parse(campaign_page)
    text = "".join(page.text)
    assert "x" * SAMPLE_CHARS not in text and "x" * (SAMPLE_CHARS - 10) in text
    assert EVIL_SAMPLE.split("</textarea>")[0] in text
    gsm8k = real_prompts("math_gsm8k_test.jsonl.gz", 1)[0]
    assert gsm8k[:100] in text


def test_reason_codes_explained(campaign_page: str) -> None:
    assert set(REASON_OF_FEATURE.values()) <= set(REASON_DESCRIPTIONS)
    for code in REASON_DESCRIPTIONS:
        assert f'id="reason-{code}"' in campaign_page
    # The features behind a reason are shown with the account's value.
    assert "machine-timing: gap_regularity" in "".join(parse(campaign_page).text)


def test_group_activity_counts_per_hour_and_model(campaign_result: AnalysisResult) -> None:
    con = campaign_result.con
    assert con is not None
    activity = group_activity(con, {EVIL_ACCOUNT: "a", LEGIT_ACCOUNT: "b"}, "hour")
    campaign = activity["a"]
    assert sum(campaign.series["model-v1"].values()) == 300
    assert sum(campaign.series[EVIL_MODEL].values()) == 150
    assert campaign.series["model-v1"][datetime(2026, 2, 1, 0, 0)] == 15  # one every 4 minutes
    assert sum(campaign.capabilities.values()) == 450
    assert campaign.capabilities[CAPABILITIES[0]] == 300
    legit = activity["b"]
    assert set(legit.series) == {"model-v1"} and sum(legit.series["model-v1"].values()) == 80


def test_group_activity_bounds_model_names() -> None:
    """Model names come from clients: a flood of distinct names folds into one series."""
    rows = [("spray", START + timedelta(minutes=i), f"model-{i % 40}", 0) for i in range(400)]
    rows += [("spray", START + timedelta(minutes=i), "model-main", 0) for i in range(100)]
    activity = group_activity(signals_con(rows), {"spray": "s"}, "hour")["s"]
    assert len(activity.series) == MAX_MODELS
    assert sum(activity.series["model-main"].values()) == 100
    assert sum(sum(points.values()) for points in activity.series.values()) == 500
    assert sum(activity.series[OTHER_MODELS].values()) == 400 - 10 * (MAX_MODELS - 2)


def test_figure_specs_are_valid_plotly(campaign_result: AnalysisResult) -> None:
    """Specs skip plotly's validation at run time for speed, so validate them here."""
    con = campaign_result.con
    assert con is not None
    activity = group_activity(con, {EVIL_ACCOUNT: "a"}, "hour")["a"]
    timeline = go.Figure(activity_spec(activity, "hour"))
    bars = [t for t in timeline.data if t.orientation != "h"]
    assert {t.name for t in bars} == {
        "model-v1",
        "model-v2&lt;/script&gt;&lt;script&gt;alert(3)&lt;/script&gt;",
    }
    assert sum(sum(t.y) for t in bars) == 450
    members = [
        {"account_id": a, "risk": r}
        for a, r in ((EVIL_ACCOUNT, 0.97), (EVIL_IMG_ACCOUNT, 0.93), (QUOTED_ACCOUNT, 0.41))
    ]
    graph_spec = cluster_graph_spec(members, EDGES.to_pylist())
    assert graph_spec is not None
    graph = go.Figure(graph_spec)
    assert len(graph.data) == 1 + 3  # one line trace per link kind, then the accounts
    assert list(graph.data[-1].marker.color) == [0.97, 0.93, 0.41]
    assert cluster_graph_spec(members[:1], EDGES.to_pylist()) is None  # nothing to link


def test_zero_flagged_and_no_clusters(tmp_path: Path) -> None:
    rows = [(LEGIT_ACCOUNT, START + timedelta(minutes=7 * i), "model-v1", 0) for i in range(50)]
    result = AnalysisResult(
        accounts=accounts_table(
            [{"account_id": LEGIT_ACCOUNT, "n": 50, "risk": 0.03, "flagged": False, "reasons": ""}]
        ),
        clusters=CLUSTERS_SCHEMA.empty_table(),
        threshold=0.5,
        n_exchanges=50,
        n_duplicates=0,
        con=signals_con(rows),
    )
    path = tmp_path / "report.html"
    write_report(path, result)
    page = parse(path.read_text(encoding="utf-8"))
    text = "".join(page.text)
    assert "No account scored above the threshold." in text
    assert "No coordinated cluster was found." in text
    assert not [s for s in page.scripts if "Plotly.newPlot" in s]


def test_without_signals_and_with_evaluation(tmp_path: Path) -> None:
    """A result without its signals store still gets the tables; the evaluation renders generically."""
    truth = pa.table(
        {
            "account_id": ["a1", "a2", "a3", "a4"],
            "label": ["campaign", "campaign", "legit", "legit"],
            "campaign": ["hydra-<1>", "hydra-<1>", "", ""],
            "actor_type": ["reseller", "reseller", "classroom", "enterprise"],
        },
        schema=TRUTH_SCHEMA,
    )
    pred = pa.table(
        {
            "account_id": ["a1", "a2", "a3", "a4"],
            "risk": [0.9, 0.4, 0.2, 0.1],
            "flagged": [True, False, False, False],
            "cluster_id": ["", "", "", ""],
            "reasons": ["high-volume", "", "", ""],
        },
        schema=PREDICTION_SCHEMA,
    )
    evaluation = compute_metrics(truth, pred, {"a1": 900, "a2": 400, "a3": 50, "a4": 20})
    accounts = accounts_table(
        [
            {"account_id": a, "n": n, "risk": r, "flagged": f, "reasons": why}
            for a, n, r, f, why in zip(
                ["a1", "a2", "a3", "a4"], [900, 400, 50, 20], [0.9, 0.4, 0.2, 0.1],
                [True, False, False, False], ["high-volume", "", "", ""], strict=True,
            )
        ]
    )  # fmt: skip
    result = AnalysisResult(accounts, CLUSTERS_SCHEMA.empty_table(), 0.5, 1370, 0)
    path = tmp_path / "report.html"
    write_report(path, result, evaluation=evaluation)
    page = parse(path.read_text(encoding="utf-8"))
    text = "".join(page.text)
    assert "No exchange signals available for this account." in text
    evaluation_text = text[text.index("Evaluation against ground truth") :]
    assert "campaign_actor_types" in evaluation_text and "reseller" in evaluation_text
    assert "hydra-<1>" in evaluation_text
    assert "fpr_budget" in evaluation_text


def test_many_flagged_accounts_bounded(tmp_path: Path) -> None:
    n = MAX_TABLE_ROWS + 200
    rows = [
        {
            "account_id": f"hydra-{i:05d}",
            "n": 40,
            "risk": 0.6 + 0.3 * i / n,
            "flagged": True,
            "reasons": "high-volume",
        }
        for i in range(n)
    ]
    traffic = [
        (f"hydra-{i:05d}", START + timedelta(minutes=i + j), "model-v1", 0)
        for i in range(n)
        for j in range(3)
    ]
    result = AnalysisResult(
        accounts_table(rows), CLUSTERS_SCHEMA.empty_table(), 0.5, 3 * n, 0, con=signals_con(traffic)
    )
    path = tmp_path / "report.html"
    write_report(path, result)
    html_text = path.read_text(encoding="utf-8")
    assert html_text.count('<div class="card" id="account-') == TOP_ACCOUNTS
    assert f"Showing {MAX_TABLE_ROWS:,} of {n:,} flagged accounts" in html_text
    assert f"hydra-{n - 1:05d}" in html_text  # the highest risk comes first
    assert "hydra-00000" not in html_text  # the lowest risk is past the table's cap


def test_spring_layout_separates_components() -> None:
    triangle = [(0, 1), (1, 2), (0, 2)]
    pairs = np.array(triangle + [(a + 3, b + 3) for a, b in triangle])
    pos = spring_layout(6, pairs)
    assert pos.shape == (6, 2) and np.isfinite(pos).all()
    dist = np.linalg.norm(pos[:, None] - pos[None, :], axis=-1)
    within = max(dist[a, b] for a, b in pairs)
    between = min(dist[a, b] for a in range(3) for b in range(3, 6))
    assert within < between
    assert dist[np.triu_indices(6, 1)].min() > 1e-3  # no two accounts drawn on top of each other
    np.testing.assert_allclose(spring_layout(6, pairs), pos)  # deterministic


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_page_scripts_are_valid_javascript(campaign_page: str, tmp_path: Path) -> None:
    """Every script on the page except the embedded plotly.js library parses as JavaScript."""
    scripts = [s for s in parse(campaign_page).scripts if "plotly.js v" not in s]
    path = tmp_path / "scripts.js"
    path.write_text("\n;\n".join(scripts), encoding="utf-8")
    done = subprocess.run(["node", "--check", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.search(r'Plotly\.newPlot\(\s*"fig-graph-0"', "".join(scripts))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
# Payloads that would change the page if the browser ran them.
PWN_SAMPLE = (
    "<img src=x onerror=\"document.title='pwned'\">"
    "<script>document.documentElement.setAttribute('data-pwned', '1')</script>"
)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (.ci/run installs Debian's chromium)")
def test_report_renders_in_a_real_browser_without_running_injected_code(
    campaign_result: AnalysisResult, tmp_path: Path
) -> None:
    path = tmp_path / "report.html"
    write_report(path, campaign_result, samples={EVIL_ACCOUNT: [PWN_SAMPLE]}, edges=EDGES, title="browser check")
    done = subprocess.run(
        [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", path.as_uri(),
        ],
        capture_output=True, text=True, timeout=180,
    )
    dom = done.stdout
    assert dom.count('class="main-svg"') >= 2, done.stderr[-2000:]  # plotly ran and drew the figures
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title and "pwned" not in title.group(1)
    html_tag = re.search(r"<html[^>]*>", dom)
    assert html_tag and "data-pwned" not in html_tag.group(0)
    assert "document.title=" in dom  # the payload is on the page, as text
