"""The account features as DuckDB SQL: an independent definition kept only to check the fold.

`distillguard.behaviour.features.account_features` builds each account's `AccountState` and reads
the features from it; this query computes the same features straight from the `signals` table,
with exact counts where the state keeps sketches. The tests compare the two.
"""

from distillguard.behaviour.state import (
    BUDGET_STOP_REASONS,
    ENTRY_POINT_TIERS,
    HIGH_VALUE_CAPABILITIES,
    MIN_WINDOW_DAYS,
    PRIOR_EXCHANGES,
    YOUNG_ACCOUNT_DAYS,
)
from distillguard.signals.capability import CAPABILITIES
from distillguard.signals.exchange import ELICITATION_COLUMNS

_HIGH_VALUE_CODES = ", ".join(str(CAPABILITIES.index(c)) for c in HIGH_VALUE_CAPABILITIES if c in CAPABILITIES)
_ENTRY_TIERS = ", ".join(f"'{t}'" for t in ENTRY_POINT_TIERS)
_BUDGET_STOPS = ", ".join(f"'{r}'" for r in BUDGET_STOP_REASONS)


def _shrunk_share(condition: str) -> str:
    return f"sum(({condition})::DOUBLE) / (count(*) + {PRIOR_EXCHANGES})"


_ELICIT_SHARES = ",\n        ".join(f"{_shrunk_share(f'{c} > 0.5')} AS {c}_share" for c in ELICITATION_COLUMNS)
_ELICIT_ANY = " OR ".join(f"{c} > 0.5" for c in ELICITATION_COLUMNS)


def _top_share_sql(column: str) -> str:
    """Share of an account's exchanges that use its most common value of `column` (NULL counts)."""
    return f"""
    SELECT account_id, max(k) AS top_{column}, count(*) AS distinct_{column}
    FROM (SELECT account_id, {column}, count(*) AS k FROM signals GROUP BY ALL)
    GROUP BY account_id"""


FEATURE_SQL = f"""
WITH base AS (
    SELECT
        account_id,
        count(*) AS n,
        min(ts) AS first_ts,
        count(DISTINCT date_trunc('day', ts)) AS active_days,
        {_ELICIT_SHARES},
        {_shrunk_share(_ELICIT_ANY)} AS elicit_any_share,
        avg((capability IN ({_HIGH_VALUE_CODES}))::DOUBLE) AS high_value_share,
        avg((n_user <= 1 AND n_messages <= 1)::DOUBLE) AS single_turn_share,
        avg((has_tool_turn OR n_tools > 0)::DOUBLE) AS tool_turn_share,
        sum(coalesce(output_tokens, 0)) AS out_tokens,
        sum(coalesce(input_tokens, 0)) AS in_tokens,
        avg(coalesce(output_tokens, 0)) AS mean_output,
        avg((stop_reason IN ({_BUDGET_STOPS}))::DOUBLE) AS max_tokens_stop_share
    FROM signals GROUP BY account_id
),
window_span AS (
    SELECT greatest({MIN_WINDOW_DAYS}, datediff('day', min(ts), max(ts)) + 1) AS days FROM signals
),
hours AS (
    SELECT account_id, max(k) AS peak_hour
    FROM (SELECT account_id, date_trunc('hour', ts) AS h, count(*) AS k FROM signals GROUP BY ALL)
    GROUP BY account_id
),
hour_of_day AS (
    SELECT account_id, -sum(p * ln(p)) / ln(24) AS hour_entropy
    FROM (
        SELECT account_id, count(*) / sum(count(*)) OVER (PARTITION BY account_id) AS p
        FROM signals GROUP BY account_id, hour(ts)
    ) GROUP BY account_id
),
capability_mix AS (
    SELECT account_id, -sum(p * ln(p)) / ln({len(CAPABILITIES)}) AS capability_entropy
    FROM (
        SELECT account_id, count(*) / sum(count(*)) OVER (PARTITION BY account_id) AS p
        FROM signals GROUP BY account_id, capability
    ) GROUP BY account_id
),
gaps AS (
    -- Regularity of inter-arrival times within active stretches (gaps under an hour): machines
    -- pacing requests have a low coefficient of variation, people and bursty jobs a high one.
    SELECT account_id,
           CASE WHEN count(g) >= 5 AND avg(g) > 0 THEN 1 / (1 + stddev_pop(g) / avg(g)) ELSE 0.5 END
               AS gap_regularity
    FROM (
        SELECT account_id,
               epoch_ms(ts) - lag(epoch_ms(ts)) OVER (PARTITION BY account_id ORDER BY ts) AS g
        FROM signals
    )
    WHERE g IS NULL OR g < 3600000
    GROUP BY account_id
),
frames AS ({_top_share_sql("frame_hash")}),
tails AS ({_top_share_sql("tail_hash")}),
skels AS ({_top_share_sql("skel_hash")}),
systems AS ({_top_share_sql("sys_hash")}),
model_pivot AS (
    -- Share of an account's traffic in the 24 hours after a release that went to the new model,
    -- counted only for accounts that were active before the release (a switch, not a first visit).
    SELECT s.account_id, max(s.share) AS new_model_pivot
    FROM (
        SELECT x.account_id, r.model,
               avg((x.model = r.model)::DOUBLE) AS share
        FROM signals x JOIN releases r
          ON x.ts >= r.released_at AND x.ts < r.released_at + INTERVAL 24 HOUR
        GROUP BY ALL
    ) s
    JOIN (
        SELECT DISTINCT x.account_id, r.model FROM signals x JOIN releases r ON x.ts < r.released_at
    ) active_before USING (account_id, model)
    GROUP BY s.account_id
)
SELECT
    b.account_id,
    b.n AS n_exchanges,
    ln(1 + b.n) AS log_exchanges,
    ln(1 + b.n / b.active_days) AS log_per_active_day,
    ln(1 + h.peak_hour) AS log_peak_hour,
    b.active_days / w.days AS active_days_share,
    coalesce(hd.hour_entropy, 0) AS hour_entropy,
    coalesce(g.gap_regularity, 0.5) AS gap_regularity,
    {", ".join(f"b.{c}_share" for c in ELICITATION_COLUMNS)},
    b.elicit_any_share,
    f.top_frame_hash / (b.n + {PRIOR_EXCHANGES}) AS top_frame_share,
    t.top_tail_hash / (b.n + {PRIOR_EXCHANGES}) AS top_tail_share,
    f.distinct_frame_hash / b.n AS frame_diversity,
    k.top_skel_hash / (b.n + {PRIOR_EXCHANGES}) AS top_skeleton_share,
    sy.top_sys_hash / (b.n + {PRIOR_EXCHANGES}) AS top_system_share,
    coalesce(c.capability_entropy, 0) AS capability_entropy,
    b.high_value_share,
    b.single_turn_share,
    b.tool_turn_share,
    ln((1 + b.out_tokens) / (1 + b.in_tokens)) AS log_out_in_ratio,
    ln(1 + b.mean_output) AS log_mean_output,
    coalesce(b.max_tokens_stop_share, 0) AS max_tokens_stop_share,
    coalesce(p.new_model_pivot, 0) AS new_model_pivot,
    CASE WHEN a.created_at IS NULL THEN 0
         ELSE (datediff('day', a.created_at, b.first_ts) < {YOUNG_ACCOUNT_DAYS})::DOUBLE END AS young_account,
    (coalesce(a.tier, '') IN ({_ENTRY_TIERS}))::DOUBLE AS entry_point_tier,
    CASE WHEN a.verified IS NULL THEN 0 ELSE (NOT a.verified)::DOUBLE END AS unverified
FROM base b
CROSS JOIN window_span w
LEFT JOIN hours h USING (account_id)
LEFT JOIN hour_of_day hd USING (account_id)
LEFT JOIN capability_mix c USING (account_id)
LEFT JOIN gaps g USING (account_id)
LEFT JOIN frames f USING (account_id)
LEFT JOIN tails t USING (account_id)
LEFT JOIN skels k USING (account_id)
LEFT JOIN systems sy USING (account_id)
LEFT JOIN model_pivot p USING (account_id)
LEFT JOIN accounts a USING (account_id)
ORDER BY b.account_id
"""
