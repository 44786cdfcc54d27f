"""Issue 12, acceptance 7: SIP digest guessing against the running gateway.

The lockout key is user + source IP. On loopback the guesser sends from 127.0.0.2
(the edge listens on 127.0.0.1 and answers there over lo), the advisor's real
phone from 127.0.0.1: different addresses, as an attacker and a phone would be.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.gateway_harness import Advisor, running_gateway
from tests.peers.rawsip import SipUA

pytestmark = pytest.mark.e2e


async def test_100_wrong_digests_lock_that_address_out_not_the_advisors_phone(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path) as gw:
        s = gw.settings
        with SipUA((s.sip.ip, s.sip.port), local=("127.0.0.2", 0)) as guesser:
            codes = [guesser.register("sofia", f"guess-{i}").status for i in range(100)]
            assert codes[0] == 401 and codes[-1] == 403
            assert 403 in codes[:20]  # blocked early, not after the 100th
            # Blocked for a while: the right password does not help from there.
            assert guesser.register("sofia", "demo-sofia").status == 403
        assert gw.rpc is not None and not await gw.rpc.registered("sofia")

        async with Advisor(gw, "sofia") as sofia:  # asserts its 200 OK
            assert sofia.registration["code"] == 200
            assert await gw.rpc.registered("sofia")
