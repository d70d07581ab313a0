"""The web adapter: a page to pick, paste or drop a picture and correct the names, and its JSON API.

    app = create_app(core, admin_token="...")       # an aiohttp Application
    server = WebServer(core, "127.0.0.1", 8080)      # or run it in a shared event loop
    await server.start(); ...; await server.stop()
"""

from adapters.web.app import COOKIE_NAME, ApiError, create_app, stop_accepting, wait_idle
from adapters.web.openapi import openapi_document
from adapters.web.ratelimit import RateLimit
from adapters.web.server import WebServer, start

__all__ = ["COOKIE_NAME", "ApiError", "RateLimit", "WebServer", "create_app", "openapi_document",
           "start", "stop_accepting", "wait_idle"]
