"""Words for codes (GET /api/v1/labels) and the service level per queue."""

from __future__ import annotations

from pathlib import Path

from cti.config import load_settings
from cti.labels import labels, word
from cti.routing import AdvisorState
from cti.store.reports import service_by_queue

DEMO = Path(__file__).resolve().parents[2] / "config" / "cti.yaml"


def test_the_demo_config_names_every_code_a_screen_shows() -> None:
    table = labels(load_settings(DEMO))
    assert table["topics"]["visa"] == "Visa and entering the Netherlands"
    assert table["languages"]["es"] == "Español"
    assert table["wrap_up_codes"]["info_given"] == "Information given"
    assert table["end_reasons"]["caller_hangup"] == "Caller hung up"
    assert table["away_reasons"]["lunch"] == "Lunch"
    assert table["away_reasons"]["no_answer"] == "Missed offers"
    # Every state the distributor can be in has a word.
    assert set(table["states"]) >= {s.value for s in AdvisorState}
    assert word(table, "topics", "visa") == "Visa and entering the Netherlands"
    assert word(table, "topics", "not_named") == "not_named"  # falls back to the code
    assert word(table, "topics", None) == ""


def test_service_level_per_queue() -> None:
    calls = [(("es", "visa"), 0.0, 5.0, None),        # answered within 20 s
             (("es", "visa"), 0.0, 50.0, None),       # answered late
             (("es", "visa"), 0.0, None, "caller_abandoned"),
             (("nl", "digid"), 10.0, 12.0, None),
             (("nl", "digid"), 10.0, None, "caller_hangup")]  # not in the queue's figures
    rows = service_by_queue(calls, 20.0)
    assert [(r["language"], r["topic"]) for r in rows] == [("es", "visa"), ("nl", "digid")]
    es, nl = rows
    assert (es["answered"], es["answered_within_sl"], es["abandoned"]) == (2, 1, 1)
    assert es["service_level"] == round(1 / 3, 4)
    assert (nl["answered"], nl["service_level"], nl["service_level_s"]) == (1, 1.0, 20.0)
