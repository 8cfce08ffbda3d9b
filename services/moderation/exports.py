"""moderation's part of a data export (services.common.exports): the reports the user filed (what,
why, and how each ended, not who closed it), and the moderators' actions on their content or
account that changed something (hidden, suspended, made or unmade a moderator: what and when; not by
whom, nor the moderators' notes). A dismissed report changed nothing and is not told."""

from __future__ import annotations

from services.common.exports import ExportKind, rows_of
from services.moderation.service import DISMISS

KINDS = {
    "reports": rows_of("moderation_reports", "reporter_id", "id", "target_type", "target_id", "reason", "note",
                       "status", "created_at", "closed_at"),
    # NOTE: no index leads with owner_id: the audit log of each shard is read once per export.
    "moderation_actions": ExportKind(
        "SELECT id, action, target_type, target_id, created_at FROM {schema}.moderation_audit WHERE owner_id = "
        f"%(user)s AND action <> {DISMISS} AND id > %(after)s ORDER BY id LIMIT %(limit)s",
        key="id"),
}
