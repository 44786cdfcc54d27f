"""The sound device of a phone engine: the machine's sound card when there is one
(``cti softphone``, whose advisor talks through it), else PJSIP's null device,
which only clocks the conference bridge (media workers, and machines without
sound). What was chosen is said in the engine's ready event (``audio``)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("cti.media")

#: PJMEDIA_AUD_DEFAULT_CAPTURE_DEV and PJMEDIA_AUD_DEFAULT_PLAYBACK_DEV.
DEFAULT_CAPTURE, DEFAULT_PLAYBACK = -1, -2
NULL_DEVICE = "null device (no sound)"


def choose_sound(adm: Any, wanted: bool) -> str:
    """Open the default capture and playback devices if ``wanted`` and the wheel
    sees any, else the null device; returns a line for the screen."""
    if wanted:
        devices = [d for d in adm.enumDev2()] if adm.getDevCount() else []
        mics = [d.name for d in devices if d.inputCount > 0]
        speakers = [d.name for d in devices if d.outputCount > 0]
        if mics and speakers:
            try:
                adm.setCaptureDev(DEFAULT_CAPTURE)
                adm.setPlaybackDev(DEFAULT_PLAYBACK)
            except Exception as e:  # pjsua2.Error: a device that cannot be opened
                log.warning("sound device not usable (%s): the null device instead", e)
            else:
                return f"sound device: {mics[0]} / {speakers[0]}"
        log.info("no sound device on this machine: the null device (the advisor hears nothing)")
        adm.setNullDev()
        return f"{NULL_DEVICE}: this machine has no sound card"
    adm.setNullDev()
    return NULL_DEVICE
