"""The web agent desktop (/agent), wallboard (/wallboard) and coach page (/coach): static files, no build step.

The pages are plain HTML, CSS and JavaScript next to this module; they talk to
the REST API under /api/v1 and the CTI WebSocket like any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

WEB_DIR = Path(__file__).resolve().parent
# Only these kinds are served: the module's own Python source stays private.
_MEDIA_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript",
                ".svg": "image/svg+xml"}
# Pages change with the gateway: let the browser revalidate instead of guessing.
_HEADERS = {"Cache-Control": "no-cache"}


# Third-party browser libraries, bundled by scripts/setup.sh (cti/web/package.json).
_VENDOR = {"jssip.min.js": WEB_DIR / "vendor" / "jssip.min.js"}


def _file(name: str) -> FileResponse:
    if name in _VENDOR:
        path = _VENDOR[name]
        if not path.is_file():
            raise HTTPException(404, f"{name} is not installed: run scripts/setup.sh")
        return FileResponse(path, media_type="text/javascript", headers=_HEADERS)
    path = WEB_DIR / name
    media = _MEDIA_TYPES.get(path.suffix)
    if media is None or path.parent != WEB_DIR or not path.is_file():
        raise HTTPException(404, "not found")
    return FileResponse(path, media_type=media, headers=_HEADERS)


def mount_web(app: FastAPI) -> None:
    """Serve /agent, /wallboard, /coach and their assets under /web/."""

    @app.get("/agent", include_in_schema=False)
    async def agent_page() -> FileResponse:
        return _file("agent.html")

    @app.get("/wallboard", include_in_schema=False)
    async def wallboard_page() -> FileResponse:
        return _file("wallboard.html")

    @app.get("/coach", include_in_schema=False)
    async def coach_page() -> FileResponse:
        return _file("coach.html")

    @app.get("/web/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        return _file(name)
