"""Response headers every answer gets: no MIME sniffing, no framing, no referrer, no caching of anything sent
with credentials, a strict CSP on the API — and the `RateLimit-*` headers a rate-limit check left in the scope."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.clientinfo import Networks, is_https

RATE_LIMIT_STATE = "vigil_rate_limit_headers"
_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key", b"cookie")
# The interactive docs run their packaged scripts and styles (and inline bootstrap code) from this origin only;
# everything else is JSON and needs nothing. ReDoc starts its search worker from a blob.
_DOCS_PATHS = ("/docs", "/redoc")
_DOCS_CSP = (
    b"content-security-policy",
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'",
)
_ALWAYS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_NO_STORE = ((b"cache-control", b"no-store"), (b"pragma", b"no-cache"))


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, trusted_proxies: Networks = (), hsts_max_age_s: int = 0) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies
        # HSTS only means something on an answer the browser got over HTTPS (RFC 6797 §7.2: ignored over HTTP).
        self.hsts = (b"strict-transport-security", f"max-age={hsts_max_age_s}".encode()) if hsts_max_age_s else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = dict(scope.get("headers") or [])
        with_credentials = any(name in request_headers for name in _CREDENTIAL_HEADERS)
        path: str = scope["path"]
        # Token endpoints answer secrets without having been sent any: never cache those either.
        sensitive = with_credentials or path.startswith("/api/v1/auth/")
        peer = scope["client"][0] if scope.get("client") else None
        forwarded = request_headers.get(b"x-forwarded-proto", b"").decode("latin-1")
        hsts = self.hsts if self.hsts and is_https(scope["scheme"], peer, forwarded, self.trusted_proxies) else None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [h for h in _ALWAYS if h[0] not in present]
                if _API_CSP[0] not in present:
                    extra.append(_DOCS_CSP if path.startswith(_DOCS_PATHS) else _API_CSP)
                if hsts is not None and hsts[0] not in present:
                    extra.append(hsts)
                if sensitive:
                    headers = [h for h in headers if h[0].lower() != b"cache-control"]
                    extra.extend(_NO_STORE)
                state = scope.get("state") or {}
                for name, value in (state.get(RATE_LIMIT_STATE) or {}).items():
                    if name.lower().encode() not in present:  # a 429 problem already carries them
                        extra.append((name.encode(), value.encode()))
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)
