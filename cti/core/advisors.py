"""Who works on the hotline, live: the config's ``advisors`` as the seed of a first
start, and over them what the admin API stored (added, changed, removed).

The store wins: a stored record replaces the config's item of the same name, and a
name removed through the API stays removed even though the YAML still lists it.
Everything that asks "who is this user?" at run time asks the directory, never
``settings.advisors`` (which is only the seed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from cti.config import AdvisorSettings

log = logging.getLogger("cti.advisors")


class AdminError(Exception):
    """A change refused; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class AdvisorDirectory:
    def __init__(self, seed: Iterable[AdvisorSettings],
                 stored: Mapping[str, AdvisorSettings | None] | None = None) -> None:
        self._advisors: dict[str, AdvisorSettings] = {a.name: a for a in seed}
        for name, record in (stored or {}).items():
            if record is None:
                self._advisors.pop(name, None)  # removed through the API
            else:
                self._advisors[name] = record

    @classmethod
    def load(cls, seed: Iterable[AdvisorSettings],
             rows: Mapping[str, Mapping[str, Any] | None]) -> AdvisorDirectory:
        """From the store's rows (cti/store/advisors.py); a row that no longer
        validates (an older cti, a hand edit) is skipped and logged, and the config's
        item of that name, if any, stays."""
        stored: dict[str, AdvisorSettings | None] = {}
        for name, data in rows.items():
            if data is None:
                stored[name] = None
                continue
            try:
                stored[name] = AdvisorSettings.model_validate(data)
            except ValidationError as e:
                log.error("stored advisor %r ignored: %s", name,
                          "; ".join(err["msg"] for err in e.errors()))
        return cls(seed, stored)

    def all(self) -> list[AdvisorSettings]:
        """The config's order first, then those added through the API, in order."""
        return [*self._advisors.values()]

    def names(self) -> list[str]:
        return list(self._advisors)

    def get(self, name: str) -> AdvisorSettings | None:
        return self._advisors.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._advisors

    def put(self, advisor: AdvisorSettings) -> None:
        """Add an advisor, or replace the one of that name (same place in the list)."""
        self._advisors[advisor.name] = advisor

    def remove(self, name: str) -> AdvisorSettings:
        """KeyError if there is no such advisor."""
        try:
            return self._advisors.pop(name)
        except KeyError:
            raise KeyError(f"no advisor {name!r}") from None

    def sip_ha1s(self) -> dict[str, str]:
        """What the edge's users table holds: name -> HA1."""
        return {a.name: a.sip_ha1 for a in self._advisors.values()}


def record_of(advisor: AdvisorSettings) -> dict[str, Any]:
    """The stored form (JSON: trainings' expiry as ISO dates); hashes, no password."""
    return advisor.model_dump(mode="json", exclude_none=True)
