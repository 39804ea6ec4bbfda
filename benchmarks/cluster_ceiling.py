"""How well could any grouping by ask mix separate the `adaptive` campaigns? An upper bound.

In the `adaptive` world every campaign gives each account its own address, card and client and
draws its wrappers and task items from the same public collections, so what still tells one
operation's accounts from another's is the mix of what they harvest (`sim.campaigns.ADAPTIVE`).
This script asks the question with everything a detector cannot know handed to it: the campaigns'
true recipe mixes and sizes, every account flagged, and each harvesting episode's true recipe.
Accounts are drawn as the simulator draws them (`adaptive_episodes`), and each is assigned to the
campaign with the highest posterior (the Bayes-optimal rule; no grouping of accounts by ask mix
can do better on average). It prints, per campaign, the share of its accounts assigned to it
(the ceiling on a cluster's coverage) and the share of the accounts assigned to it that are its
own (purity of that ideal cluster).

    .venv/bin/python benchmarks/cluster_ceiling.py [--repeats 50] [--seed 0]

The simulator's constants are read here on purpose: this measures the world, not the detector.
"""

from __future__ import annotations

import argparse

import numpy as np

from distillguard.sim.campaigns import ADAPTIVE, adaptive_episodes
from distillguard.sim.generator import CAMPAIGN_KINDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50, help="accounts drawn per real account")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    kinds = [kind for kind, *_ in CAMPAIGN_KINDS]
    sizes = np.array([adaptive for *_, adaptive in CAMPAIGN_KINDS], dtype=float)
    recipes = sorted({int(r) for kind in kinds for r in ADAPTIVE[kind][0][0]})
    mixes = np.zeros((len(kinds), len(recipes)))
    for i, kind in enumerate(kinds):
        (kind_recipes, p), _, _ = ADAPTIVE[kind]
        for recipe, share in zip(kind_recipes, p, strict=True):
            mixes[i, recipes.index(int(recipe))] = share / sum(p)
    log_mix = np.log(np.where(mixes > 0, mixes, 1e-300))
    log_prior = np.log(sizes / sizes.sum())

    truth, guess, episodes = [], [], []
    for i, kind in enumerate(kinds):
        n = int(sizes[i]) * args.repeats
        k_harvest, _ = adaptive_episodes(rng, ADAPTIVE[kind][1], n)
        counts = np.stack([rng.multinomial(k, mixes[i]) for k in k_harvest])
        guess.append(np.argmax(counts @ log_mix.T + log_prior, axis=1))
        truth.append(np.full(n, i))
        episodes.append(float(np.median(k_harvest)))
    truth_a, guess_a = np.concatenate(truth), np.concatenate(guess)

    print("| campaign | accounts | harvest episodes per account (median) | ceiling on coverage | purity at that ceiling |")
    print("|---|---|---|---|---|")
    for i, kind in enumerate(kinds):
        own = truth_a == i
        assigned = guess_a == i
        coverage = float(np.mean(guess_a[own] == i))
        purity = float(np.mean(truth_a[assigned] == i)) if assigned.any() else float("nan")
        print(f"| {kind}-adaptive | {int(sizes[i])} | {episodes[i]:.0f} | {100 * coverage:.1f}% | {100 * purity:.1f}% |")


if __name__ == "__main__":
    main()
