"""The HTTP edge below the routers: middleware (request context, security headers, unhandled errors, metrics,
body limits, idempotency), the RFC 9457 problem handlers, the operational routes and the FastAPI dependencies of
the plumbing. Routers and `vigil.app` use it; services, repositories and engines never do."""
