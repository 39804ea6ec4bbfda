"""Labelled account tables from the two traffic generators, for fitting and cross-world evaluation.

A *world* is one generated log with ground truth: `sim:SCENARIO:SEED` from the project's own
simulator (`distillguard simulate`), or `worldgen:PROFILE:SEED[:SHAPE]` from the independent
generator in `worldgen/` (written from the threat description alone; the detector never imports
it). Each world is turned into the table the scorer sees (account and cluster features, exactly
as `analyze` computes them before scoring) plus the truth columns `label` (bool), `actor_type`,
`campaign` and `shape`, cached as Parquet under the work folder.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distillguard.engines.local import join_on_account, load_features, open_store
from distillguard.ingest import RejectSink
from distillguard.linking.config import KIND_ID
from distillguard.linking.link import Linker

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent / "distillguard"
# The simulator's campaigns by the shape DESIGN.md describes, for worlds whose truth has no shape.
SIM_SHAPES = {"reasoning": "synchronized", "coding": "few-huge", "agentic": "spread", "hydra": "hydra"}

# Seeds: training, calibration and test worlds never share one. The simulator's are 300+ so they
# overlap neither the shipped model's nor the README's other tables.
PLAN = {
    "sim": {
        "train": ["sim:random:301", "sim:random:302", "sim:random:303", "sim:medium:304", "sim:adaptive:305"],
        "calibrate": ["sim:random:311", "sim:medium:312", "sim:adaptive:313"],
        "test": ["sim:random:321", "sim:random:322", "sim:medium:323", "sim:adaptive:324"],
    },
    "worldgen": {
        "train": ["worldgen:naive:301", "worldgen:evasive:302", "worldgen:mixed:303", "worldgen:mixed:304"],
        "calibrate": ["worldgen:naive:311", "worldgen:evasive:312", "worldgen:mixed:313"],
        "test": ["worldgen:naive:321", "worldgen:evasive:322", "worldgen:mixed:323", "worldgen:naive:324",
                 "worldgen:evasive:325"],
    },
}


@dataclass(frozen=True)
class World:
    generator: str  # "sim" or "worldgen"
    variant: str  # simulator scenario, or worldgen profile
    seed: int
    scale: float = 1.0
    shape: str = "contract"  # worldgen log shape

    @classmethod
    def parse(cls, spec: str, scale: float = 1.0) -> World:
        parts = spec.split(":")
        if parts[0] not in ("sim", "worldgen") or len(parts) not in (3, 4):
            raise SystemExit(f"world {spec!r}: expected sim:SCENARIO:SEED or worldgen:PROFILE:SEED[:SHAPE]")
        shape = parts[3] if len(parts) == 4 else "contract"
        return cls(parts[0], parts[1], int(parts[2]), scale, shape)

    @property
    def name(self) -> str:
        suffix = "" if self.shape == "contract" else f"-{self.shape}"
        return f"{self.generator}-{self.variant}-{self.seed}-x{self.scale:g}{suffix}"

    def __str__(self) -> str:
        return f"{self.generator}:{self.variant}:{self.seed}"


def generate(world: World, folder: Path) -> None:
    if (folder / "truth.csv").exists():
        return
    if world.generator == "sim":
        cmd = [str(BIN), "simulate", "--scenario", world.variant, "--seed", str(world.seed), "--out", str(folder),
               "--scale", str(world.scale), "--quiet"]
    else:
        cmd = [sys.executable, "-m", "worldgen", "--profile", world.variant, "--seed", str(world.seed),
               "--out", str(folder), "--scale", str(world.scale), "--shape", world.shape]
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def log_files(folder: Path) -> list[Path]:
    logs = [p for p in ("exchanges.jsonl.gz", "access.jsonl.gz", "batch_input.jsonl", "batch_output.jsonl")
            if (folder / p).exists()]
    if not logs:
        raise SystemExit(f"{folder}: no exchange log")
    return [folder / p for p in logs]


def read_truth(folder: Path) -> dict[str, tuple[bool, str, str, str]]:
    """account -> (is campaign, actor type, campaign, shape), from either generator's truth.csv."""
    out = {}
    with (folder / "truth.csv").open() as fh:
        for row in csv.DictReader(fh):
            campaign = row.get("campaign_id") or row.get("campaign") or ""
            shape = row.get("campaign_shape") or SIM_SHAPES.get(campaign.split("-")[0], campaign)
            out[row["account_id"]] = (row["label"] == "campaign", row["actor_type"], campaign, shape)
    return out


def account_table(folder: Path) -> tuple[pa.Table, pa.Table]:
    """Account and cluster features of one generated log, as `analyze` computes them before scoring,
    and the incidences verdicts are inherited through after scoring (`Linker.inherited`): one row
    per account and egress range or card (`LinkConfig.inherit_kinds`) with its exchanges there."""
    con = open_store(None)
    with RejectSink(None) as rejects:
        features, _, _ = load_features(
            con, log_files(folder), rejects=rejects, accounts=folder / "accounts.jsonl",
            releases=folder / "releases.jsonl", quiet=True,
        )
    with Linker(con) as linker:
        accounts = linker.link().accounts
        kinds = ", ".join(str(KIND_ID[k]) for k in linker.cfg.inherit_kinds)
        egress = con.sql(f"SELECT a.account_id, i.kind, i.key, i.n FROM _lk_inc i JOIN _lk_acct a USING (aid) "
                         f"WHERE i.kind IN ({kinds})").to_arrow_table()
    return join_on_account(features, accounts), egress


def egress(world: World, work: Path) -> pa.Table:
    """The world's inheritance incidences (written beside its `labelled` table)."""
    labelled(world, work)
    return pq.read_table(work / f"{world.name}.egress.parquet")


def labelled(world: World, work: Path) -> pa.Table:
    """The world's account table with its truth columns (generated and cached on first use)."""
    cache = work / f"{world.name}.parquet"
    if cache.exists() and (work / f"{world.name}.egress.parquet").exists():
        return pq.read_table(cache)
    folder = work / world.name
    generate(world, folder)
    table, incidences = account_table(folder)
    truth = read_truth(folder)
    ids = table.column("account_id").to_pylist()
    rows = [truth.get(a, (False, "unknown", "", "")) for a in ids]
    for j, (name, kind) in enumerate((("label", pa.bool_()), ("actor_type", pa.string()),
                                      ("campaign", pa.string()), ("shape", pa.string()))):
        table = table.append_column(name, pa.array([r[j] for r in rows], kind))
    table = table.append_column("world", pa.array([str(world)] * len(ids), pa.string()))
    work.mkdir(parents=True, exist_ok=True)
    pq.write_table(incidences, work / f"{world.name}.egress.parquet")
    pq.write_table(table, cache)
    return table
