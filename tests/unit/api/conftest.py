"""An admin app for unit tests: real routes, tokens and index, no Kafka (no follower, no store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_support import ADMIN_TOKEN, VIEWER_TOKEN
from fastapi import FastAPI
from fastapi.testclient import TestClient

from dispatcher.api.app import create_app
from dispatcher.api.auth import Tokens
from dispatcher.api.index.database import Index
from dispatcher.api.service import AdminService
from dispatcher.api.sessions import Sessions
from dispatcher.config.admin import Admin, AdminToken
from dispatcher.config.secrets import Secret
from dispatcher.config.settings import Settings


@pytest.fixture
def app(tmp_path: Path) -> Iterator[FastAPI]:
    admin = Admin(
        tokens=(
            AdminToken(Secret(ADMIN_TOKEN), "admin"),
            AdminToken(Secret(VIEWER_TOKEN), "viewer"),
        ),
        data_dir=str(tmp_path),
        max_body_bytes=4096,
    )
    settings = Settings(admin=admin, topics=Settings().topics)
    index = Index(tmp_path / "index.sqlite3")
    service = AdminService(settings, Tokens.from_settings(admin), index, Sessions(60))
    yield create_app(service)
    index.close()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
