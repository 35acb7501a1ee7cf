"""Serving the dashboard standalone (``analysis-pipeline dashboard``) with uvicorn."""

from __future__ import annotations

from typing import Any

__all__ = ["serve"]


async def serve(app: Any, *, host: str, port: int) -> None:
    """Serve ``app`` on ``host:port`` in this event loop until interrupted (Ctrl-C)."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    await server.serve()
