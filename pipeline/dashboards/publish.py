"""Uploading the generated dashboards through the Grafana HTTP API (grafana-client)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FOLDER_UID = "moodpipe"


def publish(url: str, token: str, files: list[Path], folder_title: str = "moodpipe") -> list[str]:
    """Create or overwrite each dashboard in the moodpipe folder; returns their URLs."""
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError

    api = GrafanaApi.from_url(url, credential=token or None, timeout=15)
    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(folder_title, uid=FOLDER_UID)
    urls = []
    for path in files:
        board: dict[str, Any] = json.loads(path.read_text())
        board.pop("id", None)  # Grafana assigns ids; uids identify dashboards
        answer = api.dashboard.update_dashboard(
            {
                "dashboard": board,
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "moodpipe dashboards publish",
            }
        )
        urls.append(str(answer.get("url", board.get("uid"))))
    return urls
