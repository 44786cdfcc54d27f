"""The controller's state that survives a restart: IVR flags and advisors' skills.

At start the stored values go over the config's (:func:`start_flags`,
:func:`restore_skills`); a change is stored with its audit line, committed, and
only then applied and announced (:func:`persist_flag`, :func:`persist_skills`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from cti.controller.skills import SkillBook, Skills
from cti.routing import Action, AdvisorState, Distributor

if TYPE_CHECKING:
    from cti.store.db import Store

log = logging.getLogger("cti.flow")

FLAG_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_flag_name(name: str) -> None:
    if not FLAG_NAME.fullmatch(name):
        raise ValueError("a flag name is letters, digits, '.', '_' or '-'")


def start_flags(config: Mapping[str, bool], store: Store) -> dict[str, bool]:
    """The config's ``ivr.flags``, overridden by the values stored last."""
    return {**config, **store.flags.values()}


def skills_from_json(data: Mapping[str, Any]) -> Skills:
    return Skills(
        languages={k: int(v) for k, v in data["languages"].items()},
        topics={k: int(v) for k, v in data["topics"].items()},
        trainings={t: date.fromisoformat(d) if d else None
                   for t, d in data.get("trainings", {}).items()},
    )


def restore_skills(book: SkillBook, store: Store) -> list[str]:
    """Put the stored skill edits over the config's; returns the advisors restored.
    An advisor no longer in the config (or no longer taking calls) is skipped."""
    restored = []
    for name, data in store.skills.all().items():
        try:
            book.set(name, skills_from_json(data))
        except KeyError:
            log.warning("stored skills of %r ignored: not an advisor who takes calls "
                        "in the config", name)
        except (TypeError, ValueError) as e:
            log.warning("stored skills of %r ignored: %s", name, e)
        else:
            restored.append(name)
    return restored


def restore_states(distributor: Distributor, store: Store, now: float) -> list[Action]:
    """At start: each advisor back in the state they chose last (available, away
    with its reason); the calls they were on ended with the old controller."""
    actions: list[Action] = []
    for name, s in store.advisor_states.all().items():
        if s.state == AdvisorState.LOGGED_OUT.value:
            continue
        try:
            actions += distributor.set_state(name, s.state, now, reason=s.reason)
        except (KeyError, ValueError) as e:
            log.warning("stored state of %r ignored: %s", name, e)
    return actions


async def persist_flag(store: Store, name: str, value: bool, by: str | None,
                       address: str | None = None) -> None:
    check_flag_name(name)
    await store.flags.set(name, value, by, address)


async def persist_skills(store: Store, book: SkillBook, advisor: str, skills: Skills,
                         by: str | None, address: str | None = None) -> None:
    book.get(advisor)  # KeyError before anything is stored
    await store.skills.save(advisor, skills.as_dict(), by, address)


class GatewayFlags:
    """The :class:`cti.plugins.api.FlagsService` of the plugins: the controller's."""

    def __init__(self, flow: Any, plugin: str) -> None:
        self._flow = flow
        self._plugin = plugin

    def get(self, name: str) -> bool:
        return bool(self._flow.flags.get(name, False))

    async def set(self, name: str, value: bool, by: str | None = None) -> None:
        await self._flow.set_flag(name, value, by=by or f"plugin:{self._plugin}")
