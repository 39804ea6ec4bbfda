"""Detection quality on simulated traffic: distillguard and both baselines, side by side, one run.

For each scenario the simulator writes traffic with ground truth (seed 1 by default; the shipped
scoring model never saw seeds below 100), then the real CLI runs `analyze`, `baseline rate-limit`
and `baseline anomaly`, and `evaluate --json` scores all three. Prints markdown tables for the README:

    .venv/bin/python benchmarks/evaluate_detection.py [--scenarios medium adaptive] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_containment import run, world

METHODS = ("distillguard", "rate-limit", "anomaly")


def evaluate_scenario(scenario: str, seed: int, work: Path, scale: float) -> dict[str, dict]:
    sim = world(scenario, seed, work, scale)
    log = sim / "exchanges.jsonl.gz"
    results: dict[str, dict] = {}
    for method in METHODS:
        out = work / f"{scenario}-{seed}-{method}"
        if method == "distillguard":
            seconds = run(
                "analyze", log, "--accounts", sim / "accounts.jsonl", "--releases", sim / "releases.jsonl",
                "--out", out, "--quiet",
            )
        else:
            seconds = run("baseline", method, log, "--out", out)
        run("evaluate", "--truth", sim / "truth.csv", "--pred", out / "accounts.csv", "--exchanges", log,
            "--json", out / "evaluation.json")
        results[method] = json.loads((out / "evaluation.json").read_text())
        results[method]["seconds"] = seconds
    return results


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(scenario: str, results: dict[str, dict]) -> str:
    lines = [
        f"**{scenario}**",
        "",
        "| method | precision | recall | FPR (legit) | recall @0.1% FPR | PR-AUC | campaigns found "
        "| campaign exchanges by unflagged accounts |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, m in results.items():
        f, r, c = m["flagged"], m["ranking"], m["campaign_detection"]
        leaked = (m.get("exchanges") or {}).get("campaign", {}).get("leaked_share")
        lines.append(
            f"| {method} | {fmt(f['precision'])} | {fmt(f['recall'])} | {pct(f['fpr'])} | "
            f"{fmt(r['recall_at_fpr']['recall'])} | {fmt(r.get('pr_auc'))} | {c['n_detected']}/{c['n_campaigns']} | "
            f"{pct(leaked)} |"
        )
    types = sorted({row["actor_type"] for m in results.values() for row in m["legit_actor_types"]})
    lines += ["", "False-positive rate per legitimate actor type (flagged / accounts):", ""]
    lines.append("| actor type | " + " | ".join(results) + " |")
    lines.append("|---|" + "---|" * len(results))
    for t in types:
        cells = []
        for m in results.values():
            row = next(x for x in m["legit_actor_types"] if x["actor_type"] == t)
            cells.append(f"{pct(row['fpr'])} ({row['n_flagged']}/{row['n_accounts']})")
        lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines += ["", "Recall per campaign (flagged / accounts), and distillguard's main cluster for it:", "",
              "| campaign | " + " | ".join(results) + " | cluster coverage | cluster purity |"]
    lines.append("|---|" + "---|" * (len(results) + 2))
    campaigns = sorted({row["campaign"] for m in results.values() for row in m["campaigns"]})
    for name in campaigns:
        cells = []
        for m in results.values():
            row = next(x for x in m["campaigns"] if x["campaign"] == name)
            cells.append(f"{fmt(row['recall'])} ({row['n_flagged']}/{row['n_accounts']})")
        ours = next(x for x in results["distillguard"]["campaigns"] if x["campaign"] == name).get("cluster") or {}
        cells += [pct(ours.get("coverage")), pct(ours.get("purity"))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", default=["medium", "adaptive"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--work", type=Path, default=Path("bench-out/eval"))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    summary = {}
    for scenario in args.scenarios:
        results = evaluate_scenario(scenario, args.seed, args.work, args.scale)
        summary[scenario] = results
        print(markdown(f"{scenario} (seed {args.seed})", results), end="\n\n", flush=True)
    (args.work / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
