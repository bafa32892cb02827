"""Checks of an MLflow tracking server's logins, before any data loads (no MLflow import).

A server started with ``--app-name basic-auth`` answers 401 to missing or wrong credentials
and 403 to a user without permission on a resource. lrexp sends the credentials MLflow's
client sends (``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``, or
``MLFLOW_TRACKING_TOKEN``) and turns either answer into one line naming the server.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit

from lrexp.errors import ConfigError
from lrexp.tracking.uri import redact

CREDENTIALS = "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def auth_headers() -> dict[str, str]:
    """The Authorization header MLflow's client would send, from the environment."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}
    bearer = os.environ.get("MLFLOW_TRACKING_TOKEN")
    return {"Authorization": f"Bearer {bearer}"} if bearer else {}


def access_error(uri: str, experiment: str, status: int) -> ConfigError | None:
    """The one-line error for an HTTP 401 (bad login) or 403 (no permission), else None."""
    server = redact(uri)
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if status == 401:
        who = f"as user {user!r}" if user else f"without credentials ({CREDENTIALS})"
        return ConfigError("logger.tracking_uri", f"{server}: authentication failed {who}")
    if status == 403:
        return ConfigError(
            "logger.experiment_name",
            f"{server}: user {user!r} has no permission to log to experiment {experiment!r}",
        )
    return None


def check_server_access(uri: str, experiment: str, timeout: float = 10.0) -> None:
    """Ask an ``http(s)://`` server for ``experiment`` with the user's credentials; raise
    :class:`ConfigError` for a failed login or a refused experiment. A server that does not
    answer is left to the run's own open (which may fall back to a local store)."""
    if not is_http(uri):
        return
    parts = urlsplit(uri)
    headers = auth_headers()
    if parts.username is not None:  # credentials in the URI, as MLflow's client also takes
        token = base64.b64encode(f"{parts.username}:{parts.password or ''}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}
    netloc = parts.netloc.rsplit("@", 1)[-1]
    base = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    query = urlencode({"experiment_name": experiment})
    request = urllib.request.Request(
        f"{base}/api/2.0/mlflow/experiments/get-by-name?{query}", headers=headers
    )
    try:  # a fresh opener takes today's proxy settings; urlopen's keeps its first call's
        with urllib.request.build_opener().open(request, timeout=timeout) as response:
            json.load(response)
    except urllib.error.HTTPError as err:
        error = access_error(uri, experiment, err.code)
        if error is not None:
            raise error from None
    except (urllib.error.URLError, OSError, ValueError):
        return
