"""The web application's guards that are about HTTP, not about the clinic: the request body limit (checked on the
way in, before a byte is kept), sign-in throttling, and the response headers that keep the pages to themselves.
Who may see and change what is decided by socketcad.clinic.users."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

__all__ = ["BodyLimit", "SecurityHeaders", "SignInThrottle", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 64 * 2**20  # a clinical scan as STL is 5-50 MB; the library's own mesh limits apply after this
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; "
       "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]  # on every answer, a 413 too


class BodyLimit:
    """ASGI middleware: a request whose body is over ``limit`` bytes is answered 413 at once: by its
    Content-Length before anything is read, or, with no length given, as soon as the stream passes the limit."""

    def __init__(self, app, limit: int = MAX_BODY_BYTES):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await _too_large(send, self.limit)
        seen, over, started = 0, False, False

        async def counted():
            nonlocal seen, over
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                over = True
                raise _TooLarge()
            return message

        async def unless_over(message):
            # past the limit, what the app answers (FastAPI words the error as a 400 body parse) is not sent
            nonlocal started
            if started or not over:
                started = started or message["type"] == "http.response.start"
                await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except _TooLarge:
            pass
        if over and not started:
            await _too_large(send, self.limit)


class _TooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    body = (f'{{"detail":"the upload is over the {limit >> 20} MiB limit: decimate the scan or export it as '
            f'binary STL"}}').encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *HEADERS]})
    await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    """ASGI middleware: every response carries the content security policy and the no-sniff, no-frame and
    no-referrer headers; API answers are not cached."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += HEADERS
                if scope["path"].startswith("/api/"):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class SignInThrottle:
    """At most ``attempts`` failed sign-ins per username and per client address in ``window_s``; beyond, sign-in
    is refused (429) until the oldest failure leaves the window. In memory: one server process."""

    def __init__(self, attempts: int = 5, window_s: float = 300.0):
        self.attempts, self.window_s = attempts, window_s
        self._failures: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque:
        failures = self._failures[key]
        while failures and now - failures[0] > self.window_s:
            failures.popleft()
        return failures

    def wait_s(self, username: str, client: str) -> float:
        """Seconds until sign-in may be tried again (0: now)."""
        now = time.monotonic()
        with self._lock:
            waits = [self.window_s - (now - f[0]) for key in (f"user:{username}", f"addr:{client}")
                     if len(f := self._recent(key, now)) >= self.attempts]
        return max(waits, default=0.0)

    def failed(self, username: str, client: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"user:{username}", f"addr:{client}"):
                self._recent(key, now).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username}", None)
