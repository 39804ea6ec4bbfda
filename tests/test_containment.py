"""Containment figures from actions.csv, checked against hand-computed values."""

from pathlib import Path

import pyarrow as pa
import pytest

from distillguard.errors import InputError
from distillguard.evaluate.containment import ActionRow, containment_metrics, read_actions
from distillguard.evaluate.features import Activity, account_activity

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
    activity = {"c1": Activity(100, T0), "c2": Activity(50, T0 + 2 * HOUR), "c3": Activity(40, T0),
                "l1": Activity(30, T0), "l2": Activity(5, T0), "l3": Activity(9, T0)}
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


def test_window_counts_only_what_was_sent_from_since_on():
    since = T0 + 4 * HOUR
    # c1: 100 exchanges, 40 before `since`, throttled after 12 (before the window): leaks nothing in it.
    # c2: 50 exchanges, 10 before `since`, degraded after 25: 15 leaked in the window, contained 6 h in.
    # c3: 40 exchanges, all before `since`: not in the window at all.
    activity = {"c1": Activity(100, T0, 40), "c2": Activity(50, T0 + 2 * HOUR, 10), "c3": Activity(40, T0, 40),
                "l1": Activity(30, T0, 5), "l2": Activity(5, T0, 5), "l3": Activity(9, T0, 0)}
    actions = [ActionRow("c1", "throttle", T0 + 3 * HOUR, 12), ActionRow("c2", "degrade", T0 + 10 * HOUR, 25),
               ActionRow("l1", "throttle", T0 + HOUR, 10)]
    m = containment_metrics(_truth(), actions, activity, since_ms=since)
    assert [c["campaign"] for c in m["campaigns"]] == ["hydra"]  # coding (c3) sent nothing in the window
    hydra = m["campaigns"][0]
    assert (hydra["n_accounts"], hydra["n_contained"], hydra["n_exchanges"], hydra["n_leaked"]) == (2, 2, 100, 15)
    assert hydra["hours_to_first_containment"] == pytest.approx(0.0)  # c1 was contained when the window opened
    assert hydra["median_account_hours_to_containment"] == pytest.approx(3.0)  # median of 0 h and 6 h
    classroom = next(t for t in m["legit_actor_types"] if t["actor_type"] == "classroom")
    assert classroom["throttle"] == 1  # legitimate harm is counted over the whole replay


def test_account_activity_counts_exchanges_before_since():
    import pyarrow as pa

    ts = pa.array([T0, T0 + HOUR, T0 + 5 * HOUR, T0 + 6 * HOUR], pa.timestamp("ms", tz="UTC"))
    batch = pa.table({"account_id": ["a", "a", "a", "b"], "ts": ts})
    assert account_activity([batch], since_ms=T0 + 4 * HOUR) == {"a": (3, T0, 2), "b": (1, T0 + 6 * HOUR, 0)}
    assert account_activity([batch.slice(0, 2), batch.slice(2)]) == {"a": (3, T0, 0), "b": (1, T0 + 6 * HOUR, 0)}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("account_id,action,first_ts\nc1,block,2026-03-02T00:00:00Z\n", "header"),
        ("account_id,action,first_ts,exchanges_before\nc1,allow,2026-03-02T00:00:00Z,3\n", ":2: field 'action'"),
        ("account_id,action,first_ts,exchanges_before\nc1,block,yesterday,3\n", ":2: field 'first_ts'"),
        # No offset: which zone it meant is unknown, so it is refused rather than read as local time.
        ("account_id,action,first_ts,exchanges_before\nc1,block,2026-03-02T00:00:00,3\n", ":2: field 'first_ts'"),
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
    path.write_text("account_id,action,first_ts,exchanges_before\nc1,throttle,2026-03-02T03:00:00.250+02:00,7\n")
    assert read_actions(path) == [ActionRow("c1", "throttle", T0 + HOUR + 250, 7)]
