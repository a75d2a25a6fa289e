"""The JSON API under /api/, one module per resource."""

from __future__ import annotations

from fastapi import Request

from dispatcher.api.service import AdminService


def service_of(request: Request) -> AdminService:
    """The dependency every route takes: the service's state."""
    service: AdminService = request.app.state.admin
    return service
