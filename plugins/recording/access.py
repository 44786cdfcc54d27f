"""What coaches and supervisors may do with recordings (the routes of http.py call
this): search the index, read one row, open its file (whole or a byte range),
put it on hold, and sign short-lived audio links. Every listen and download is
an audit line (``recording.listen``, ``recording.download``, ``recording.hold``)
with the recording, the call and the client's address.

**When a listen is audited.** A browser's ``<audio>`` element fetches a file in
several Range requests (``bytes=0-`` first, then one per seek). A listen is
audited for a request that starts at byte 0: no Range header, or a range whose
first byte is 0. Seeking within a playback (a range starting later) is not
audited again; playing it again from the start is a new listen.

**Audio links.** An ``<audio>`` element cannot send an Authorization header, so a
coach first asks ``POST /recordings/{id}/audio-link`` (with their token) for a
link ``/recordings/{id}/stream?link=…``: an HMAC-SHA256 signature, with a key
made at random when the gateway starts, over the recording id, the user and an
expiry ``LINK_TTL_S`` (5 minutes) away. The stream route is public for the guard
and checks the link itself: another recording, a changed user or expiry, an old
key (a restart) or a passed expiry are refused (403). The browser then seeks with
Range as usual; the listen is audited under the link's user.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cti.plugins.api import Services
from plugins.recording.storage import Recording, RecordingRepository, Search

#: How long a signed audio link is valid (seconds).
LINK_TTL_S = 300
CHUNK = 64 * 1024


class NotFound(LookupError):
    """404: no such recording, or one without a file (declined, failed, recording)."""


class FileGone(Exception):
    """410: the index has the recording but its file is not on disk."""


class Refused(Exception):
    """403: the row's path leads outside the directory, or a bad audio link."""


class Unsatisfiable(ValueError):
    """416: a Range that does not fit the file."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the range is outside the file ({size} bytes)")
        self.size = size


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range of a Range header (``bytes=a-b``, ``bytes=a-``,
    ``bytes=-n``), or None for the whole file: no header, another unit, several
    ranges or a malformed one are ignored (RFC 9110 allows it). Raises
    Unsatisfiable for a range that starts past the end (or an empty file)."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if first and not first.isdigit() or last and not last.isdigit():
        return None
    if not first:  # suffix: the last n bytes
        n = int(last)
        if n == 0 or size == 0:
            raise Unsatisfiable(size)
        return ByteRange(max(0, size - n), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # invalid: ignored
    if start >= size:
        raise Unsatisfiable(size)
    return ByteRange(start, min(end, size - 1))


def read_bytes(path: Path, start: int, length: int) -> Iterator[bytes]:
    """The bytes [start, start+length) of a file, in chunks (a sync iterator: the
    response runs it in a thread)."""
    with path.open("rb") as f:
        f.seek(start)
        left = length
        while left > 0:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


class RecordingAccess:
    def __init__(self, services: Services, repo: RecordingRepository, directory: Path) -> None:
        self.services = services
        self.repo = repo
        self.directory = directory.resolve()
        self._key = secrets.token_bytes(32)

    def search(self, q: Search) -> list[Recording]:
        return self.repo.search(q)

    def get(self, recording_id: int) -> Recording:
        r = self.repo.get(recording_id)
        if r is None:
            raise NotFound(f"no recording {recording_id}")
        return r

    def file(self, recording_id: int) -> tuple[Recording, Path]:
        """The row and its file, checked: NotFound (no file by its status), Refused
        (a path outside the directory), FileGone (not on disk; logged)."""
        r = self.get(recording_id)
        if r.status != "done" or not r.path:
            why = {"declined": "the caller declined the recording",
                   "failed": f"the recording failed ({r.error or 'no reason given'})",
                   "recording": "the call is still being recorded"}.get(r.status, r.status)
            raise NotFound(f"recording {recording_id} has no file: {why}")
        path = (self.directory / r.path).resolve()
        if not path.is_relative_to(self.directory):
            self.services.log.error("recording %s: path %r leads outside %s: refused",
                                    recording_id, r.path, self.directory)
            raise Refused(f"recording {recording_id}: its file is outside the recordings "
                          "directory; refused")
        if not path.is_file():
            self.services.log.error("recording %s (call %s): file %s is missing", recording_id,
                                    r.call_id, path)
            raise FileGone(f"recording {recording_id}: its file is no longer on disk "
                           "(purged or lost); the index still lists it")
        return r, path

    async def audit(self, action: str, by: str | None, r: Recording, address: str | None,
                    **more: object) -> None:
        await self.services.audit.record(action, by, {
            "recording_id": r.recording_id, "call_id": r.call_id, "address": address, **more})

    async def hold(self, recording_id: int, held: bool, reason: str, by: str | None,
                   address: str | None) -> Recording:
        r = self.get(recording_id)
        r.held, r.held_reason = held, (reason or None) if held else None
        r.updated_at = self.services.now()
        await self.repo.save(r)
        await self.audit("recording.hold", by, r, address, held=held, reason=reason)
        return r

    # Signed audio links (see the module's docstring).

    def _sign(self, recording_id: int, user: str, expires: int) -> str:
        msg = f"{recording_id}:{user}:{expires}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def audio_link(self, recording_id: int, user: str) -> tuple[str, float]:
        """A link value for one recording, valid LINK_TTL_S; and its expiry."""
        self.get(recording_id)
        expires = int(self.services.now()) + LINK_TTL_S
        user_b64 = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
        return f"{user_b64}.{expires}.{self._sign(recording_id, user, expires)}", expires

    def check_link(self, recording_id: int, link: str) -> str:
        """The user a link was made for; Refused if it is not valid for this
        recording now."""
        try:
            user_b64, expires_s, sig = link.split(".")
            user = base64.urlsafe_b64decode(user_b64 + "=" * (-len(user_b64) % 4)).decode()
            expires = int(expires_s)
        except ValueError:
            raise Refused("not a valid audio link") from None
        if not hmac.compare_digest(sig, self._sign(recording_id, user, expires)):
            raise Refused("not a valid audio link for this recording")
        if expires < self.services.now():
            raise Refused("the audio link has expired: ask for a new one")
        return user
