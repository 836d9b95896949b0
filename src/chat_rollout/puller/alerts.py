"""Alertmanager: the read of the active P0/P1 alerts and their record in the database."""

from __future__ import annotations

import json
import urllib.parse

import psycopg
from psycopg.types.json import Jsonb

from .common import ALERT_ERROR_CHARS, ALERT_SEVERITIES, CycleReport, PullError, http_get, log, refusal


class AlertmanagerRead:
    """The Alertmanager side of :class:`~chat_rollout.puller.Puller` (a mixin: it uses the puller's settings)."""

    # --- Alertmanager -------------------------------------------------------------------------------------------

    def read_alerts(self) -> list[dict]:
        """The active, uninhibited P0/P1 alerts of Alertmanager (silenced ones marked), as the database stores
        them; PullError("alertmanager") when Alertmanager cannot be read or gives no Alertmanager answer."""
        params = urllib.parse.urlencode({"active": "true", "silenced": "true", "inhibited": "false"})
        url = f"{self.alertmanager_url}/api/v2/alerts?{params}"
        raw = http_get(url, self.timeout, f"GET {url}", "alertmanager")
        text = raw.decode("utf-8", "replace")
        wanted = self.alert_severity_label
        alerts = []
        try:
            body = json.loads(text)
            if not isinstance(body, list):
                raise TypeError("not a list of alerts")
            for item in body:
                labels = item["labels"]
                severity = str(labels.get(wanted, "")).strip().upper()
                if severity not in ALERT_SEVERITIES:
                    continue
                status = item.get("status") or {}
                alerts.append({
                    "alertname": str(labels.get("alertname") or "(no alertname)")[:200],
                    "severity": severity,
                    "startsAt": str(item["startsAt"]),
                    "fingerprint": str(item.get("fingerprint") or "-")[:100],
                    "silenced": bool(status.get("silencedBy")),
                })
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PullError("alertmanager", f"GET {url}: not an Alertmanager answer ({exc}): {text[:300]}") from None
        alerts.sort(key=lambda a: (a["severity"], a["startsAt"], a["alertname"], a["fingerprint"]))
        return alerts[:200]

    def pull_alerts(self, report: CycleReport | None = None) -> list[dict] | None:
        """One read of Alertmanager into the database (chat_put_v11_active_alerts): the alerts written, or None
        when Alertmanager could not be read (then the error is written: the source is unreachable, fail closed)."""
        report = report if report is not None else CycleReport(self.last_complete_bucket())
        alerts: list[dict] | None
        try:
            alerts = self.read_alerts()
            error = None
        except PullError as exc:
            self._error(report, exc.reason, str(exc))
            alerts, error = None, str(exc)[:ALERT_ERROR_CHARS]
        conn = self.connection()
        try:
            with conn.transaction():
                conn.execute("select set_config('chat.actor', 'chat-rollout pull', true)")
                conn.execute("select public.chat_put_v11_active_alerts(%s, %s)",
                             (None if alerts is None else Jsonb(alerts), error))
        except psycopg.Error as exc:
            self._error(report, "database", f"alerts refused: {refusal(conn, exc)}")
            return None
        report.alerts = alerts
        if alerts is not None:
            log.info("alertmanager: %s active P0/P1 alerts: %s", len(alerts),
                     ", ".join(f"{a['alertname']} ({a['severity']}{', silenced' if a['silenced'] else ''})"
                               for a in alerts) or "none")
        return alerts
