"""Driving the dashboard as a browser does, CSRF on: fetch a page, take the form's token, post."""

from __future__ import annotations

import re
from typing import Any

from bot.enrollment import create_counselor

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|<meta name="csrf-token" content="([^"]+)"')


def csrf_token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1) or match.group(2)


def add_counselor(db: Any, email: str, *, admin: bool = False, phone: str = "+12025550177",
                  name: str | None = None) -> int:
    return int(db.run(lambda s: create_counselor(s, email=email, name=name or email.split("@")[0].title(),
                                                 phone=phone, password=PASSWORD, region="US", is_admin=admin).id))


class Dashboard:
    """A test client that signs in through /login and posts forms with the page's CSRF token."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def login(self, email: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/login")
        return self.client.post("/login", data={"email": email, "password": password,
                                                "csrf_token": csrf_token(page.text)})

    def submit(self, page_path: str, data: dict[str, Any], action: str | None = None, **kwargs: Any) -> Any:
        """GET the page with the form, then POST `data` with its token (to `action`, default the page)."""
        page = self.client.get(page_path)
        assert page.status_code == 200, (page_path, page.status_code)
        return self.client.post(action or page_path, data={**data, "csrf_token": csrf_token(page.text)}, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, token_from: str = "/clients", **kwargs: Any) -> Any:
        page = self.client.get(token_from)
        return self.client.post(path, data={**(data or {}), "csrf_token": csrf_token(page.text)}, **kwargs)
