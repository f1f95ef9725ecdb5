"""Just enough HTTP for server-rendered pages: a parsed request and a response to send."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

MAX_FORM_BYTES = 64 * 1024


class Request:
    def __init__(self, environ: dict, prefix: str):
        self.environ = environ
        self.method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "") or "/"
        self.path = path[len(prefix):] or "/" if path.startswith(prefix) else path
        self.full_path = path
        self.query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
        self.remote_addr = (environ.get("REMOTE_ADDR") or "")[:64] or None
        self.https = environ.get("HTTP_X_FORWARDED_PROTO") == "https" or environ.get("wsgi.url_scheme") == "https"
        self.cookies: dict[str, str] = {}
        try:
            jar = SimpleCookie(environ.get("HTTP_COOKIE", ""))
            self.cookies = {k: m.value for k, m in jar.items()}
        except CookieError:
            pass
        self._form: dict[str, str] | None = None

    @property
    def form(self) -> dict[str, str]:
        if self._form is None:
            self._form = {}
            if self.method == "POST":
                try:
                    length = min(int(self.environ.get("CONTENT_LENGTH") or 0), MAX_FORM_BYTES)
                except ValueError:
                    length = 0
                body = self.environ["wsgi.input"].read(length) if length else b""
                parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
                self._form = {k: v[0] for k, v in parsed.items()}
        return self._form

    def header(self, name: str) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))


@dataclass
class Response:
    status: str = "200 OK"
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def set_cookie(self, name: str, value: str, *, path: str, secure: bool, max_age: int | None = None,
                   http_only: bool = True) -> None:
        parts = [f"{name}={value}", f"Path={path}", "SameSite=Strict"]
        if http_only:
            parts.append("HttpOnly")
        if secure:
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        self.headers.append(("Set-Cookie", "; ".join(parts)))

    def delete_cookie(self, name: str, *, path: str, secure: bool) -> None:
        self.set_cookie(name, "", path=path, secure=secure, max_age=0)


def redirect(location: str, status: str = "303 See Other") -> Response:
    return Response(status=status, headers=[("Location", location)], content_type="text/plain; charset=utf-8",
                    body=b"")
