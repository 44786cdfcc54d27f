"""The load generator's small scenario in every test run (issue 15, acceptance 1):
20 SIPp callers walk the IVR with RFC 2833 digits into the queue while 10 SIPp
advisors (digest-registered, logged in and set available through the API) answer
with RTP, against a ``cti serve`` process, through the same code as
``python -m scripts.load run ivr-queue``. It asserts that nothing failed, not how
fast: timings are benchmarks (docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from scripts.load.report import table
from scripts.load.scenarios import Plan, run

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(240)
async def test_small_ivr_queue_load_has_no_failures() -> None:
    result = await run(Plan("ivr-queue", callers=20, advisors=10, seconds=10))
    report = table(result)
    print(report)
    assert result.failed == 0, report
    # every caller's digits took them to the queue they chose (nl, visa), and the
    # advisors answered: at least one call each, all with their SIPp phones
    assert result.events["queued_by_digits"] == 20, report
    assert result.events["connected"] >= 10, report
    assert result.calls["advisor_answered"] == result.events["connected"], report
    # the gateway's processes were measured apart from the load generator's
    assert {u.role for u in result.gateway} >= {"controller", "kamailio", "workers"}, report
    workers = next(u for u in result.gateway if u.role == "workers")
    assert workers.processes == result.workers and workers.cpu_pct > 0, report
    assert {u.role for u in result.loadgen} == {"driver", "sipp"}, report
