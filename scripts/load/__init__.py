"""A load generator of real third-party SIP peers against a real gateway (issue 15).

    .venv/bin/python -m scripts.load run ivr-queue --callers 20 --advisors 10 --seconds 10

The gateway runs as its own ``cti serve`` process on free loopback ports with a
generated config (:mod:`.gwconfig`); SIPp callers send G.711 RTP and RFC 2833 digits
from a generated pcap (:mod:`.pcap`, :mod:`.sipp`); SIPp advisors register with digest
auth and answer with RTP; the advisors log in through the API and are set available
(:mod:`.api`); the gateway's processes are measured from /proc per role, apart from
the load generator's own (:mod:`.procstat`). :mod:`.scenarios` ties it together.
"""
