"""The one client of Airflow's public REST API (standard library only): the CLI, the stop-deployments
sensor, the tests, the benchmarks and the demo all use it.

Standard library only, so that `scripts/demo.py` can use it before the virtualenv exists. Errors are
typed so that callers can tell an unreachable server from a refused login from anything else. Messages
never contain the password or the token.
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

DEFAULT_TIMEOUT_S = 10.0
_DETAIL_LIMIT = 200
#: a trigger answered 5xx (e.g. SQLite "database is locked" under load) is tried again after these waits
TRIGGER_RETRY_DELAYS_S = (1.0, 3.0)


class AirflowApiError(RuntimeError):
    """Airflow answered with an error, or could not be asked; `status` is the HTTP status (0: none)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class AirflowUnreachable(AirflowApiError):
    """No HTTP answer: connection refused, unknown host, timeout."""


class AirflowAuthError(AirflowApiError):
    """The login or the token was refused (401), or the user may not do this (403)."""


@dataclass(frozen=True)
class TriggeredRun:
    """The outcome of a trigger: `created` is False when the run id already existed (409)."""

    dag_id: str
    run_id: str
    created: bool
    state: str | None = None


class AirflowApi:
    """Airflow's REST API at `url` (scheme, host, port and an optional path prefix)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"Airflow URL must be http:// or https://, not {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._login: tuple[str, str] | None = None

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request: (status, parsed JSON body); HTTP errors are returned, not raised. An expired token
        (401) is renewed once when this client logged in itself."""
        status, answer = self._request(method, path, body)
        if status == 401 and self._login is not None and path != "/auth/token":
            self.login(*self._login)
            status, answer = self._request(method, path, body)
        return status, answer

    def get(self, path: str) -> Any:
        """GET `path`: the body; AirflowApiError unless 2xx."""
        return self._ok("GET", path)

    def get_or_none(self, path: str) -> Any:
        """GET `path`: the body when 200, else None (for example: not there yet)."""
        status, body = self.request("GET", path)
        return body if status == 200 else None

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        """POST `path`: (status, body)."""
        return self.request("POST", path, body)

    def patch(self, path: str, body: Any) -> tuple[int, Any]:
        """PATCH `path`: (status, body)."""
        return self.request("PATCH", path, body)

    def _request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request; returns (status, parsed JSON body). HTTP errors are returned, not raised."""
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, _json(response.read())
        except urllib.error.HTTPError as err:
            return err.code, _json(err.read())
        except urllib.error.URLError as err:
            raise AirflowUnreachable(f"Airflow at {self.url} is unreachable: {_reason(err.reason)}") from None
        except OSError as err:  # timeouts and resets while reading the answer
            raise AirflowUnreachable(f"Airflow at {self.url} is unreachable: {_reason(err)}") from None
        except http.client.HTTPException as err:
            raise AirflowApiError(f"{self.url} did not answer like an HTTP server ({err!r})") from None

    def login(self, username: str, password: str) -> str:
        """`POST /auth/token`: a JWT for `username`; remembered for the next calls."""
        status, body = self._request("POST", "/auth/token", {"username": username, "password": password})
        if status in (401, 403):
            raise AirflowAuthError(
                f"Airflow at {self.url} refused the login of user {username!r} ({status})", status
            )
        if status != 201 or not isinstance(body, dict) or "access_token" not in body:
            raise AirflowApiError(f"POST /auth/token answered {status}: {_detail(body)}", status)
        self.token = str(body["access_token"])
        self._login = (username, password)
        return self.token

    def trigger_dag_run(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> TriggeredRun:
        """`POST /api/v2/dags/{dag_id}/dagRuns` with no logical date; 409 (run id taken) is not an error.

        A 5xx answer is retried (TRIGGER_RETRY_DELAYS_S): the run id is fixed, so a retry never makes a
        second run; if the first try did create it, the retry answers 409.
        """
        path = f"{_dag_path(dag_id)}/dagRuns"
        payload = {"logical_date": None, "dag_run_id": run_id, "conf": conf}
        status, body = self.request("POST", path, payload)
        for delay in TRIGGER_RETRY_DELAYS_S:
            if status < 500:
                break
            time.sleep(delay)
            status, body = self.request("POST", path, payload)
        if status in (200, 201):
            return TriggeredRun(dag_id, run_id, created=True, state=_get(body, "state"))
        if status == 409:
            return TriggeredRun(dag_id, run_id, created=False)
        if status in (
            401,
            403,
        ):  # 401 "Not authenticated"/"Token Expired", 403 "Invalid JWT token"/"Forbidden"
            raise AirflowAuthError(
                f"Airflow at {self.url} refused the request ({status}: {_detail(body)})", status
            )
        if status == 404:
            raise AirflowApiError(
                f"Airflow at {self.url} has no DAG {dag_id!r} (not parsed yet, or its spec is broken)", status
            )
        raise AirflowApiError(f"POST {path} answered {status}: {_detail(body)}", status)

    def is_paused(self, dag_id: str) -> bool | None:
        """Whether the DAG is paused (None when Airflow does not say)."""
        status, body = self.request("GET", _dag_path(dag_id))
        paused = _get(body, "is_paused") if status == 200 else None
        return paused if isinstance(paused, bool) else None

    def dag_runs(self, dag_id: str, states: list[str]) -> list[dict[str, Any]]:
        """`GET /api/v2/dags/{dag_id}/dagRuns` in any of `states` (up to 100)."""
        query = urllib.parse.urlencode([("limit", 100), *(("state", s) for s in states)])
        body = self._ok("GET", f"{_dag_path(dag_id)}/dagRuns?{query}")
        return list(_get(body, "dag_runs") or [])

    def pages(self, path: str, key: str, limit: int = 100) -> Iterator[dict[str, Any]]:
        """Every item of a paged list answer (`key` of each page), page by page (`limit`, `offset`)."""
        offset, sep = 0, "&" if "?" in path else "?"
        while True:
            body = self.get(f"{path}{sep}limit={limit}&offset={offset}")
            items = _get(body, key) or []
            yield from items
            offset += len(items)
            if not items or offset >= (_get(body, "total_entries") or 0):
                return

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of one run."""
        path = f"{_dag_path(dag_id)}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return list(self.pages(path, "task_instances"))

    def set_task_instance_state(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, state: str, note: str
    ) -> None:
        """`PATCH` one task instance (every map index when `map_index` < 0) to `state`, with a note."""
        path = f"{_dag_path(dag_id)}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/"
        path += urllib.parse.quote(task_id, safe="") + (f"/{map_index}" if map_index >= 0 else "")
        self._ok("PATCH", path, {"new_state": state, "note": note[:1000]})

    def update_dag_run(self, dag_id: str, run_id: str, state: str | None, note: str) -> None:
        """`PATCH` a run's note (and state, when given)."""
        body: dict[str, Any] = {"note": note[:1000]}
        if state is not None:
            body["state"] = state
        self._ok("PATCH", f"{_dag_path(dag_id)}/dagRuns/{urllib.parse.quote(run_id, safe='')}", body)

    def _ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.request(method, path, body)
        if status in (401, 403):
            raise AirflowAuthError(f"Airflow at {self.url} refused {method} {path} ({status})", status)
        if not 200 <= status < 300:
            raise AirflowApiError(f"{method} {path} answered {status}: {_detail(answer)}", status)
        return answer


def _dag_path(dag_id: str) -> str:
    return f"/api/v2/dags/{urllib.parse.quote(dag_id, safe='')}"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")


def _get(body: Any, key: str) -> Any:
    return body.get(key) if isinstance(body, dict) else None


def _detail(body: Any) -> str:
    """Airflow's error detail (or the body) on one short line."""
    detail = _get(body, "detail") or body
    text = detail if isinstance(detail, str) else json.dumps(detail)
    text = " ".join(text.split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 3] + "..."


def _reason(reason: object) -> str:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__
