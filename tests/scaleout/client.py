"""What a person (or a script) does against the running topology, over HTTP only."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from tests.scaleout.topology import Topology, wait_for

TUS = {"Tus-Resumable": "1.0.0"}
CSRF_INPUT = re.compile(
    r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"'
)
CHECKLIST = {"bystanders_blurred": True, "no_juveniles": True, "investigation_safe": True}


def make_clip(
    path: Path, *, seconds: float, size: str = "320x240", source: str = "testsrc2"
) -> Path:
    """A clip with sound; ``source`` ``testsrc2`` compresses easily, ``mandelbrot``'s
    fine detail makes every frame expensive to encode."""
    if not path.exists():
        subprocess.run(
            [
                shutil.which("ffmpeg") or "ffmpeg",
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"{source}=size={size}:rate=25",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency=440:duration={seconds}",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-t",
                str(seconds),
                str(path),
            ],
            check=True,
        )
    return path


class Browser(requests.Session):
    """A client as the web machines see it behind the README's one load balancer
    (``TATTLETALE_TRUSTED_PROXIES=1``): the balancer terminates TLS and says so
    (``X-Forwarded-Proto``); the portal marks its cookies Secure, as it must in
    production, and the balancer passes them on over the private network's HTTP."""

    def __init__(self) -> None:
        super().__init__()
        self.headers["X-Forwarded-Proto"] = "https"

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kw: Any) -> Any:
        follow = kw.pop("allow_redirects", True)
        kw["allow_redirects"] = False
        for cookie in self.cookies:
            cookie.secure = False
        if str(method).upper() == "POST" and "Authorization" not in self.headers:
            # A browser posting a form says which page it came from; over HTTPS the
            # portal's CSRF check requires it (the form posts to its own page here).
            page = "https://" + str(url).split("://", 1)[1]  # the page was HTTPS
            kw["headers"] = {"Referer": page, **(kw.get("headers") or {})}
        answer = super().request(method, url, *args, **kw)
        if follow and answer.is_redirect:
            target = requests.compat.urljoin(str(url), answer.headers["Location"])
            return self.request("GET", target, timeout=kw.get("timeout", 60))
        return answer


def browser() -> requests.Session:
    return Browser()


def csrf_of(page: str) -> str:
    match = CSRF_INPUT.search(page)
    assert match, "no CSRF token on the page"
    return html.unescape(match.group(1) or match.group(2))


class Api:
    """The REST API with one account's token, over any of the web machines."""

    def __init__(self, topology: Topology, role: str) -> None:
        self.topology = topology
        self.session = browser()
        self.session.headers["Authorization"] = f"Bearer {topology.accounts[role].token}"

    def url(self, path: str, node: int = 0) -> str:
        return self.topology.url(node, path if path.startswith("/") else f"/api/v1/{path}")

    def post(self, path: str, node: int = 0, **kw: Any) -> requests.Response:
        return self.session.post(self.url(path, node), timeout=60, **kw)

    def get(self, path: str, node: int = 0, **kw: Any) -> requests.Response:
        return self.session.get(self.url(path, node), timeout=60, **kw)

    def create_case(self, number: str, node: int = 0) -> str:
        answer = self.post("cases", node, json={"number": number, "title": f"Robbery {number}"})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def upload(self, case_id: str, data: bytes, *, nodes: Sequence[int], chunk: int) -> str:
        """A tus upload whose consecutive PATCHes go to the web machines in turn."""
        b64 = base64.b64encode
        created = self.post(
            "uploads",
            nodes[0],
            headers={
                **TUS,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": f"filename {b64(b'doorbell.mp4').decode()},"
                f"case {b64(case_id.encode()).decode()}",
            },
        )
        assert created.status_code == 201, created.text
        path = requests.utils.urlparse(created.headers["Location"]).path
        for index, offset in enumerate(range(0, len(data), chunk)):
            node = nodes[index % len(nodes)]
            answer = self.session.patch(
                self.topology.url(node, path),
                data=data[offset : offset + chunk],
                headers={
                    **TUS,
                    "Upload-Offset": str(offset),
                    "Content-Type": "application/offset+octet-stream",
                },
                timeout=120,
            )
            assert answer.status_code == 204, (node, answer.status_code, answer.text[:500])
            assert answer.headers["Upload-Offset"] == str(min(len(data), offset + chunk))
        return path.rstrip("/").rsplit("/", 1)[-1]

    def attach(self, case_id: str, upload_id: str, node: int = 0) -> str:
        answer = self.post(f"cases/{case_id}/clips", node, json={"upload_id": upload_id})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["clip"]["id"])

    def add_clip(self, case_id: str, clip: Path, *, nodes: Sequence[int] = (0, 1)) -> str:
        data = clip.read_bytes()
        chunk = max(64 * 1024, -(-len(data) // 4))
        return self.attach(case_id, self.upload(case_id, data, nodes=nodes, chunk=chunk))

    def clip(self, clip_id: str, node: int = 0) -> dict[str, Any]:
        answer = self.get(f"clips/{clip_id}", node)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait_ready(
        self, clip_id: str, *, timeout_s: float = 600, interval_s: float = 1
    ) -> dict[str, Any]:
        """The clip's status once it and its first version are ready (fails at once if
        either failed)."""

        def ready() -> dict[str, Any] | None:
            body = self.clip(clip_id)
            status = body["clip"]["status"]
            versions = body["versions"]
            assert status not in ("failed", "rejected"), body
            assert not any(v["status"] == "failed" for v in versions), body
            if status == "ready" and versions and all(v["status"] == "ready" for v in versions):
                return body
            return None

        return dict(
            wait_for(
                ready, timeout_s=timeout_s, what=f"clip {clip_id} ready", interval_s=interval_s
            )
        )

    def approve(self, version_id: str) -> None:
        answer = self.post(f"versions/{version_id}/approval", json={"checklist": CHECKLIST})
        assert answer.status_code == 201, answer.text


class Staff:
    """A signed-in staff browser session (password, CSRF forms)."""

    def __init__(self, topology: Topology, role: str, node: int = 0) -> None:
        self.topology = topology
        self.node = node
        self.session = browser()
        account = topology.accounts[role]
        page = self.session.get(self.url("/staff/login"), timeout=30)
        answer = self.session.post(
            self.url("/staff/login"),
            data={
                "csrf_token": csrf_of(page.text),
                "email": account.email,
                "password": account.password,
            },
            timeout=30,
            allow_redirects=False,
        )
        assert answer.status_code == 302, answer.text[:2000]

    def url(self, path: str, node: int | None = None) -> str:
        return self.topology.url(self.node if node is None else node, path)

    def publish_appeal(self, case_id: str) -> str:
        """Save the appeal with the form's defaults (the case's title and its first
        publishable version), publish it, and return its public path."""
        form_url = self.url(f"/staff/cases/{case_id}/appeal")
        page = self.session.get(form_url, timeout=30)
        assert page.status_code == 200, page.text[:2000]
        boxes = re.findall(r'<input[^>]*name="versions"[^>]*>', page.text)
        ticked = [box for box in boxes if re.search(r"\schecked[\s>=]", box)] or boxes[:1]
        versions = [m.group(1) for box in ticked if (m := re.search(r'value="([^"]+)"', box))]
        assert versions, page.text[:3000]
        saved = self.session.post(
            form_url,
            data={
                "csrf_token": csrf_of(page.text),
                "title": "Help us find the robber",
                "summary": "A robbery at the corner shop on Main Street.",
                "question": "Do you know this person?",
                "versions": versions,
            },
            timeout=30,
        )
        assert saved.status_code == 200 and "Appeal saved." in saved.text, saved.text[:3000]
        published = self.session.post(
            self.url(f"/staff/cases/{case_id}/appeal/publish"),
            data={"csrf_token": csrf_of(saved.text)},
            timeout=30,
        )
        assert "The appeal is on the public site." in published.text, published.text[:3000]
        match = re.search(r'href="(/appeals/[^"/?]+)"', published.text)
        assert match, published.text[:3000]
        return match.group(1)


def send_tip(topology: Topology, appeal_path: str, body: str, node: int = 0) -> requests.Response:
    """A citizen's tip, as the public form sends it (no JavaScript)."""
    session = browser()
    form = session.get(topology.url(node, f"{appeal_path}/tip"), timeout=30)
    assert form.status_code == 200, form.text[:2000]
    return session.post(
        topology.url(node, f"{appeal_path}/tip"),
        data={"csrf_token": csrf_of(form.text), "body": body, "seen_when": "", "website": ""},
        timeout=30,
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def elapsed(since: float) -> float:
    return time.monotonic() - since
