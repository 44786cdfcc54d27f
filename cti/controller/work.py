"""Kinds of work the distributor offers to advisors, and what differs between them.

The offer machinery (:mod:`cti.controller.offers`) is the same for every kind:
record the offer, publish the screen pop, wait for it to reach the client, ring,
and on the distributor's or the phone's answer accept, revoke or fail the offer.
What differs per ``Call.kind`` sits behind :class:`TaskHandler`:

- how the advisor is reached for an offer (``reach_advisor``), and
- what happens when the advisor answers (``advisor_answered``).

:class:`InboundCall`: the caller waits on a worker, the advisor's phone is dialled
from there and bridged to the caller. :class:`cti.controller.callback.CallbackCall`:
the advisor's phone first, then the customer is dialled through the edge; a chat
would reach the advisor's client only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from cti.controller.calls import Call, Leg
from cti.controller.context import FlowContext
from cti.core.numbers import caller_id
from cti.core.views import WorkKind

log = logging.getLogger("cti.flow")

#: The longest a bridge waits for a plugin's announcement (play ``before_bridge``).
BRIDGE_WAIT_S = 30.0


class TaskHandler(Protocol):
    """What one kind of work does at the two points where kinds differ."""

    async def reach_advisor(self, call: Call, leg: Leg, advisor: str) -> bool:
        """Ring the advisor on ``leg`` for an offer; False if that failed at once."""
        ...

    def advisor_answered(self, call: Call, leg: Leg) -> None:
        """The advisor's ``leg`` is up: connect them to the work."""
        ...

    def customer_answered(self, call: Call, leg: Leg) -> None:
        """A customer leg the gateway dialled (a call back) is up."""
        ...

    def customer_gone(self, call: Call) -> bool:
        """The customer's leg ended: True if the handler ended the call itself (a
        call back nobody picked up); False lets the caller's hang-up end it."""
        ...

    def customer_play_done(self, call: Call, play_id: str) -> bool:
        """A play to the customer ended: True if it was the handler's own (a call
        back's greeting); False hands it to the IVR and waiting-music logic."""
        ...


class InboundCall:
    """A caller waiting on a worker: dial the advisor's phone, bridge it to the caller."""

    kind: WorkKind = "inbound"

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx

    async def reach_advisor(self, call: Call, leg: Leg, advisor: str) -> bool:
        # The dial carries X-CTI-Call-ID, so the advisor's client matches the ring;
        # From and P-Asserted-Identity show who is calling, not the media worker.
        ident = caller_id(call.caller_number, self.ctx.settings.sip.ip, call.topic,
                          call.language)
        return await self.ctx.dial_leg(call, leg, self.ctx.advisor_uri(advisor),
                                       headers={"P-Asserted-Identity": ident},
                                       from_uri=ident)

    def advisor_answered(self, call: Call, leg: Leg) -> None:
        if call.bridge_after_play:  # a plugin's announcement first (recording consent)
            log.info("bridge waits for the announcement call_id=%s play_id=%s",
                     call.call_id, call.bridge_after_play)
            # An announcement whose end never comes (replaced, a worker's hiccup) must
            # not leave the advisor talking to silence.
            asyncio.get_running_loop().call_later(
                BRIDGE_WAIT_S, self.customer_play_done, call, call.bridge_after_play)
            return
        self._bridge(call, leg, announced=False)

    def _bridge(self, call: Call, leg: Leg, announced: bool) -> None:
        self.ctx.send(call, "bridge", a=call.customer.leg_id, b=leg.leg_id)
        self.ctx.publish("call.bridged", call, {"number": call.caller_number,
                                                "greeted": announced})

    def customer_answered(self, call: Call, leg: Leg) -> None:
        """An inbound caller's leg is answered by the gateway: nothing to do."""

    def customer_gone(self, call: Call) -> bool:
        return False

    def customer_play_done(self, call: Call, play_id: str) -> bool:
        """The announcement a bridge waited for has played: bridge now if the advisor
        is on the line (else the IVR and waiting logic take the play's end)."""
        if not play_id or play_id != call.bridge_after_play:
            return False
        call.bridge_after_play = None
        leg = call.advisor_leg
        if call.state != "connected" or leg is None or leg.state != "confirmed":
            return False
        self._bridge(call, leg, announced=True)
        return True


def inbound_only(ctx: FlowContext) -> dict[WorkKind, TaskHandler]:
    """The handlers by kind of work today."""
    return {InboundCall.kind: InboundCall(ctx)}
