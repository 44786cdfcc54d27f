"""SIPp scenarios of the load (callers, the advisors' registrations and phones) and
the SIPp processes that run them; their statistics and response times.

The advisors are two SIPp processes for all M of them: one registers every advisor
(digest auth, one CSV row each) with a Contact on the port of the other, which
answers whatever INVITE comes (with RTP) and waits for the BYE. The edge stores a
UDP Contact as registered, so the INVITE to any advisor reaches that one port.
"""

from __future__ import annotations

import csv
import signal
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from cti.ports import free_port

HEAD = '<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n'
SDP = """v=0
      o=- 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16
"""


def _in_dialog(method: str, cseq: int) -> str:
    """The caller's ACK or BYE: to the answer's Contact, along its Record-Route."""
    return f"""
      {method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      [routes]
      From: <sip:+31205[call_number]@[local_ip]>;tag=[pid]c[call_number]
      [last_To:]
      Call-ID: [call_id]
      CSeq: {cseq} {method}
      Max-Forwards: 70
      Content-Length: 0
"""


def caller_xml(hotline: str, pcap: Path, hold_ms: int) -> str:
    """Dial the hotline, play the pcap (tone and the IVR digits), hang up after
    ``hold_ms``. The 200's response time (INVITE -> 200 OK) is rtd "setup"."""
    return HEAD.format(name="cti load caller") + f"""
  <send retrans="500" start_rtd="setup"><![CDATA[
      INVITE sip:{hotline}@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:+31205[call_number]@[local_ip]>;tag=[pid]c[call_number]
      To: <sip:{hotline}@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:caller@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      {SDP}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rtd="setup" rrs="true"/>
  <send><![CDATA[{_in_dialog("ACK", 1)}  ]]></send>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <pause milliseconds="{hold_ms}"/>
  <send retrans="500"><![CDATA[{_in_dialog("BYE", 2)}  ]]></send>
  <recv response="200"/>
</scenario>
"""


def register_xml(contact_port: int, expires_s: int) -> str:
    """REGISTER each CSV row's advisor (field0 name, field1 its SIPp authentication
    keyword: SIPp expands a keyword held in a CSV field, not a field inside the
    keyword), answering the 401 digest challenge; the Contact is the advisors' phone
    port."""
    msg = """
      REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[remote_ip]>;tag=[pid]r[call_number]
      To: <sip:[field0]@[remote_ip]>
      Call-ID: [call_id]
      CSeq: {cseq} REGISTER
      Contact: <sip:[field0]@[local_ip]:{port}>
      Expires: {expires}
      Max-Forwards: 70
      {auth}Content-Length: 0
"""
    first = msg.format(cseq=1, port=contact_port, expires=expires_s, auth="")
    second = msg.format(cseq=2, port=contact_port, expires=expires_s,
                        auth="[field1]\n      ")
    return HEAD.format(name="cti load advisors register") + f"""
  <send retrans="500"><![CDATA[{first}
  ]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[{second}
  ]]></send>
  <recv response="200"/>
</scenario>
"""


def advisor_xml(pcap: Path) -> str:
    """Answer an INVITE (copying Record-Route, so ACK and BYE pass the edge), send the
    advisor's RTP, wait for the BYE."""
    reply = """
      SIP/2.0 {code}
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]a[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:advisor@[local_ip]:[local_port];transport=[transport]>
"""
    sdp = SDP.replace(" 0 101", " 0").replace(
        "      a=rtpmap:101 telephone-event/8000\n      a=fmtp:101 0-16\n", "")
    return HEAD.format(name="cti load advisor") + f"""
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[{reply.format(code="180 Ringing")}      Content-Length: 0
  ]]></send>
  <send retrans="500"><![CDATA[{reply.format(code="200 OK")}      Content-Type: application/sdp
      Content-Length: [len]

      {sdp}
  ]]></send>
  <recv request="ACK" crlf="true"/>
  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>
  <recv request="BYE"/>
  <send><![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
  ]]></send>
</scenario>
"""


@dataclass
class Sipp:
    """One SIPp process; its statistics file and response times in ``folder``."""

    name: str
    folder: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=free_port)

    @property
    def stat_file(self) -> Path:
        return self.folder / f"{self.name}-stat.csv"

    def start(self, scenario: str, target: str | None) -> Sipp:
        xml = self.folder / f"{self.name}.xml"
        xml.write_text(scenario)
        cmd = ["sipp", "-sf", str(xml), "-i", "127.0.0.1", "-p", str(self.port),
               "-mp", str(free_port()), "-nostdin", "-trace_stat", "-stf",
               str(self.stat_file), "-fd", "1", "-trace_err", "-error_file",
               str(self.folder / f"{self.name}-errors.log"), *self.args]
        if target:
            cmd.append(target)
        log = (self.folder / f"{self.name}.out").open("wb")
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, cwd=self.folder)
        return self

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return -1

    def stop(self) -> None:
        """SIGINT: SIPp quits at once and writes its last statistics."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def counts(self) -> dict[str, int]:
        """Cumulative calls of the last statistics row: created, successful, failed."""
        rows = _stat_rows(self.stat_file)
        if not rows:
            return {"created": 0, "successful": 0, "failed": 0}
        last = rows[-1]
        return {"created": int(last.get("TotalCallCreated", 0) or 0),
                "successful": int(last.get("SuccessfulCall(C)", 0) or 0),
                "failed": int(last.get("FailedCall(C)", 0) or 0)}

    def response_times_ms(self) -> list[float]:
        """Every rtd "setup" of this process (INVITE -> 200 OK), in ms (-trace_rtt)."""
        times: list[float] = []
        for path in self.folder.glob(f"{self.name}_*_rtt.csv"):
            for row in csv.DictReader(path.read_text().splitlines(), delimiter=";"):
                value = row.get("response_time_ms") or ""
                if value.strip():
                    times.append(float(value))
        return times


def _stat_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return list(csv.DictReader(lines, delimiter=";"))


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]
