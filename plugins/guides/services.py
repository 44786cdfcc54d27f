"""The guides: the files' texts (the seed), supervisors' edits over them, and the
guide of a call's topic in its language for the screen pop."""

from __future__ import annotations

from pathlib import Path

from cti.core.views import CallView
from cti.plugins.api import ActionError, Services
from plugins.guides.schemas import GuidesSettings, guide_files
from plugins.guides.storage import Guide, GuideRepository


class UnknownGuide(LookupError):
    """No guide for that topic and language (nor a file to fall back on)."""


class Guides:
    def __init__(self, services: Services) -> None:
        self.s = services
        self.settings: GuidesSettings = services.settings
        gw = services.gateway
        self.topics = [t.code for t in gw.ivr.topics]
        self.languages = [m.code for m in gw.ivr.languages]
        self.directory = gw.path(Path(self.settings.directory))
        self.repo = GuideRepository(services.store)
        self._files: dict[tuple[str, str], Guide] = {}
        self._edited: dict[tuple[str, str], Guide] = {}

    async def start(self) -> None:
        """Read the files (checked at load already) and the stored edits."""
        files = guide_files(self.directory, self.topics, self.languages)
        self._files = {k: Guide(k[0], k[1], text, "file") for k, text in files.items()}
        self._edited = {(g.topic, g.language): g for g in self.repo.edited()}
        self.s.log.info("guides: %d from %s, %d edited", len(self._files), self.directory,
                        len(self._edited))

    # ------------------------------------------------------------- reading
    def all(self) -> list[Guide]:
        keys = sorted(set(self._files) | set(self._edited))
        return [self._edited.get(k) or self._files[k] for k in keys]

    def get(self, topic: str, language: str) -> Guide:
        guide = self._edited.get((topic, language)) or self._files.get((topic, language))
        if guide is None:
            raise UnknownGuide(f"no guide for {topic} in {language}")
        return guide

    def for_call(self, call: CallView) -> Guide | None:
        """The guide of the call's topic in the caller's language, else in the
        fallback language; None when the topic has neither."""
        if call.topic is None:
            return None
        for language in (call.language, self.settings.fallback_language):
            if language is None:
                continue
            try:
                return self.get(call.topic, language)
            except UnknownGuide:
                continue
        return None

    def screen_pop(self, call: CallView) -> dict[str, object] | None:
        guide = self.for_call(call)
        if guide is None:
            return None
        return {"topic": guide.topic, "language": guide.language, "markdown": guide.markdown,
                "source": guide.source, "updated_at": guide.updated_at}

    # ------------------------------------------------------------- editing
    def _check(self, topic: str, language: str) -> None:
        if topic not in self.topics:
            raise ActionError(f"{topic!r} is not an IVR topic (expected one of "
                              f"{', '.join(self.topics)})")
        if language not in self.languages:
            raise ActionError(f"{language!r} is not an IVR language (expected one of "
                              f"{', '.join(self.languages)})")

    async def edit(self, topic: str, language: str, markdown: str, by: str | None) -> Guide:
        """Stored before it is answered; the next screen pop has it."""
        self._check(topic, language)
        guide = Guide(topic, language, markdown, "edited", self.s.now(), by)
        await self.repo.save(guide)
        self._edited[(topic, language)] = guide
        await self.s.audit.record("guide.edit", by, {"topic": topic, "language": language,
                                                     "chars": len(markdown)})
        self._changed(guide, by)
        return guide

    async def revert(self, topic: str, language: str, by: str | None) -> Guide | None:
        """Forget the edit: the file's text again (None when there is no file)."""
        self._check(topic, language)
        if (topic, language) not in self._edited:
            raise UnknownGuide(f"the guide for {topic} in {language} is not edited")
        await self.repo.remove(topic, language)
        del self._edited[(topic, language)]
        await self.s.audit.record("guide.revert", by, {"topic": topic, "language": language})
        guide = self._files.get((topic, language))
        self._changed(guide or Guide(topic, language, "", "none"), by)
        return guide

    def _changed(self, guide: Guide, by: str | None) -> None:
        self.s.events.publish("guide.changed", {"topic": guide.topic, "language": guide.language,
                                                "source": guide.source, "by": by})
