"""Run `dispatcher admin` for a test: in a thread of this process (uvicorn on a free loopback
port) or as a subprocess; tokens and an admin-ready deployment."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

import httpx
import yaml
from dispatch_support import Deployment, hook
from kafka_support import wait_for

from dispatcher.api.server import server
from dispatcher.api.service import AdminService
from dispatcher.config.settings import Settings
from dispatcher.hooks.definitions import merged
from dispatcher.model.hook import Hook

ADMIN_TOKEN = "admin-test-token-7f3a-0123456789"
VIEWER_TOKEN = "viewer-test-token-5b2c-0123456789"
ACME_TOKEN = "acme-test-token-3d9e-0123456789"  # admin of tenant acme only
GLOBEX_TOKEN = "globex-test-token-8a41-0123456789"  # viewer of tenant globex only
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
VIEWER = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
ACME = {"Authorization": f"Bearer {ACME_TOKEN}"}
GLOBEX = {"Authorization": f"Bearer {GLOBEX_TOKEN}"}
TOKEN_ENV = {
    "DUGAA_TEST_ADMIN_TOKEN": ADMIN_TOKEN,
    "DUGAA_TEST_VIEWER_TOKEN": VIEWER_TOKEN,
    "DUGAA_TEST_ACME_TOKEN": ACME_TOKEN,
    "DUGAA_TEST_GLOBEX_TOKEN": GLOBEX_TOKEN,
}


class AdminDeployment(Deployment):
    """A deployment with a hook store of its own and an `admin:` section with both roles, and
    tokens limited to tenants acme (admin) and globex (viewer)."""

    def write(self) -> None:
        super().write()
        config = yaml.safe_load(self.config_path.read_text())
        config["topics"]["hooks"] = f"store-{self.group}"
        config["secrets"] = {"env_prefix": "DUGAA_TEST_"}  # what stored hooks may refer to
        config["admin"] = {
            "host": "127.0.0.1",
            "port": 0,
            "data_dir": str(self.directory / f"admin-{self.group}"),
            "tokens": [
                {"token": "${env:DUGAA_TEST_ADMIN_TOKEN}", "role": "admin"},
                {"token": "${env:DUGAA_TEST_VIEWER_TOKEN}", "role": "viewer"},
                {"token": "${env:DUGAA_TEST_ACME_TOKEN}", "role": "admin", "tenant": "acme"},
                {"token": "${env:DUGAA_TEST_GLOBEX_TOKEN}", "role": "viewer", "tenant": "globex"},
            ],
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def two_tenants(bootstrap: str, directory: Path, receiver_url: str) -> AdminDeployment:
    """acme's hook and globex's, each dead-lettering what it gets (422, one attempt), and a hook
    without a tenant (the operator's) that takes every order event."""
    once = {"retry": {"max_attempts": 1}}
    return AdminDeployment(
        bootstrap,
        directory,
        [
            hook("acme-sms", f"{receiver_url}/acme", ["order.*"], tenant="acme", **once),
            hook("globex-sms", f"{receiver_url}/globex", ["order.*"], tenant="globex", **once),
            hook("everyone", f"{receiver_url}/everyone", ["order.*"]),
        ],
    )


@dataclass
class RunningAdmin:
    service: AdminService
    url: str

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, trust_env=False, **kwargs)  # type: ignore[arg-type]


@contextmanager
def running_admin(settings: Settings, port: int = 0) -> Iterator[RunningAdmin]:
    """The admin service in a thread, on 127.0.0.1 and a free port; stopped on exit."""
    settings = replace(settings, admin=replace(settings.admin, host="127.0.0.1", port=port))
    service = AdminService.start(settings)
    uvicorn_server = server(settings, service)
    thread = threading.Thread(target=uvicorn_server.run, name="admin", daemon=True)
    thread.start()
    try:
        wait_for(lambda: uvicorn_server.started, 30, message="the admin service")
        bound = uvicorn_server.servers[0].sockets[0].getsockname()[1]
        yield RunningAdmin(service, f"http://127.0.0.1:{bound}")
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=30)
        service.stop()
    assert not thread.is_alive(), "the admin service did not stop"


def indexed(admin: RunningAdmin, count: int, timeout: float = 60) -> None:
    """Wait until the admin's index holds at least `count` records more than at start."""
    assert admin.service.indexer is not None
    indexer = admin.service.indexer
    wait_for(lambda: indexer.written >= count, timeout, message=f"{count} records indexed")


def data_dir(settings: Settings) -> Path:
    return Path(settings.admin.data_dir)


def finished(client: httpx.Client, started: httpx.Response) -> dict[str, Any]:
    """The replay `started` once it is no longer running."""
    assert started.status_code == 202, started.text
    replay_id = started.json()["id"]

    def state() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get(f"/api/replays/{replay_id}").json()
        return body if body["status"] != "running" else None

    result = wait_for(state, 60, message=f"replay {replay_id}")
    assert result["status"] == "done", json.dumps(result)
    return result


def signed_in(client: httpx.Client, token: str) -> str:
    """Sign the console in with `token`; the session's CSRF token, read from a page's form."""
    answer = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/dead-letters").text)
    assert found is not None
    return found.group(1)


class MemoryDecisions:
    """The health topic's decisions in memory, for an admin service without Kafka: where
    pauses and resumes are written (`service.pauses`) and read back (`service.health`)."""

    def __init__(self, *paused: str) -> None:
        from dispatcher.model.health import Decision

        self.written: dict[str, Decision] = {
            hook_id: Decision(hook_id, "paused", 1000.0, 1000.0, "auto", "503")
            for hook_id in paused
        }

    def get(self, hook_id: str) -> Any:
        return self.written.get(hook_id)

    def write(self, decision: Any) -> None:
        self.written[decision.hook_id] = decision

    def decisions(self) -> dict[str, Any]:
        return dict(self.written)

    def wait_for_decision(self, decision: Any, timeout: float) -> bool:
        return self.written.get(decision.hook_id) == decision

    def stop(self) -> None:
        pass


class MemoryStore:
    """The hook store and its follower in one, in memory: what is written is in force at once,
    over the hooks of the hooks file (`file`), as the store's definition of an id replaces the
    file's."""

    def __init__(
        self,
        service: AdminService,
        definitions: list[dict[str, Any]],
        file: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.service = service
        self.stored = {raw["id"]: raw for raw in definitions}
        self.file = [Hook.from_dict(raw) for raw in file]
        self._publish()

    @classmethod
    def installed(
        cls,
        service: AdminService,
        definitions: Sequence[dict[str, Any]] = (),
        file: Sequence[dict[str, Any]] = (),
    ) -> Self:
        """A store of `definitions`, put in as `service`'s hook store and its follower, over
        the hooks file's `file`."""
        store = cls(service, list(definitions), file)
        service.store = store  # type: ignore[assignment]
        service.follower = store  # type: ignore[assignment]
        return store

    def apply(self, definitions: list[Any]) -> None:
        self.stored.update({d.hook.id: d.raw for d in definitions})
        self._publish()

    def delete(self, hook_id: str) -> None:
        self.stored.pop(hook_id, None)
        self._publish()

    def wait_for(self, _written: object, _timeout: float) -> bool:
        return True

    def definition(self, hook_id: str) -> dict[str, Any] | None:
        return self.stored.get(hook_id)

    def _publish(self) -> None:
        stored = {hook_id: Hook.from_dict(raw) for hook_id, raw in self.stored.items()}
        self.service._set_hooks(merged(self.file, stored))
