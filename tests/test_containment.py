"""Containment figures from actions.csv, checked against hand-computed values."""

from pathlib import Path

import pyarrow as pa
import pytest

from distillguard.errors import InputError
from distillguard.evaluate.containment import ActionRow, containment_metrics, read_actions

HOUR = 3_600_000
T0 = 1_772_409_600_000  # 2026-03-02T00:00:00Z


def _truth() -> pa.Table:
    return pa.table({
        "account_id": ["c1", "c2", "c3", "l1", "l2", "l3"],
        "label": ["campaign", "campaign", "campaign", "legit", "legit", "legit"],
        "campaign": ["hydra", "hydra", "coding", None, None, None],
        "actor_type": [None, None, None, "classroom", "classroom", "chat_user"],
    })


def test_leaked_share_and_time_to_containment():
    activity = {"c1": (100, T0), "c2": (50, T0 + 2 * HOUR), "c3": (40, T0), "l1": (30, T0), "l2": (5, T0),
                "l3": (9, T0)}
    actions = [
        ActionRow("c1", "monitor", T0 + HOUR, 3),  # monitoring contains nothing
        ActionRow("c1", "throttle", T0 + 3 * HOUR, 12),
        ActionRow("c1", "block", T0 + 5 * HOUR, 30),
        ActionRow("c2", "degrade", T0 + 6 * HOUR, 4),
        ActionRow("l1", "throttle", T0 + HOUR, 10),
        ActionRow("l2", "monitor", T0 + HOUR, 1),
    ]
    m = containment_metrics(_truth(), actions, activity)
    coding, hydra = m["campaigns"]
    assert (hydra["n_contained"], hydra["n_exchanges"], hydra["n_leaked"]) == (2, 150, 16)
    assert hydra["leaked_share"] == pytest.approx(16 / 150)
    assert hydra["hours_to_first_containment"] == pytest.approx(3.0)  # c1's throttle, 3 h after T0
    assert hydra["median_account_hours_to_containment"] == pytest.approx(3.5)  # median of 3 h and 4 h
    assert (coding["n_contained"], coding["n_leaked"], coding["leaked_share"]) == (0, 40, 1.0)
    assert coding["hours_to_first_containment"] is None
    assert m["campaign_leaked_share"] == pytest.approx(56 / 190)
    classroom = next(t for t in m["legit_actor_types"] if t["actor_type"] == "classroom")
    assert (classroom["n_accounts"], classroom["throttle"], classroom["monitor"], classroom["block"]) == (2, 1, 1, 0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("account_id,action,first_ts\nc1,block,2026-03-02T00:00:00Z\n", "header"),
        ("account_id,action,first_ts,exchanges_before\nc1,allow,2026-03-02T00:00:00Z,3\n", ":2: field 'action'"),
        ("account_id,action,first_ts,exchanges_before\nc1,block,yesterday,3\n", ":2: field 'first_ts'"),
        ("account_id,action,first_ts,exchanges_before\nc1,block,2026-03-02T00:00:00Z,-1\n", ":2: field 'exchanges_before'"),
        ("account_id,action,first_ts,exchanges_before\n,block,2026-03-02T00:00:00Z,1\n", ":2: field 'account_id'"),
        ("account_id,action,first_ts,exchanges_before\nc1,block,2026-03-02T00:00:00Z,1\n"
         "c1,block,2026-03-02T01:00:00Z,2\n", ":3: duplicate"),
    ],
)
def test_malformed_actions_are_one_line_errors(tmp_path: Path, body: str, message: str):
    path = tmp_path / "actions.csv"
    path.write_text(body)
    with pytest.raises(InputError, match=message) as err:
        read_actions(path)
    assert "\n" not in str(err.value)


def test_actions_timestamps_are_read_as_utc(tmp_path: Path):
    path = tmp_path / "actions.csv"
    path.write_text("account_id,action,first_ts,exchanges_before\nc1,throttle,2026-03-02T01:00:00.250Z,7\n")
    assert read_actions(path) == [ActionRow("c1", "throttle", T0 + HOUR + 250, 7)]
