"""messaging's part of a data export (services.common.exports): the messages the user sent. The
messages others sent them are the senders' data and are not in it (README: "Your data"); an
end-to-end encrypted message's text was never on the server."""

from __future__ import annotations

from services.common.exports import ExportKind

KINDS = {
    "messages": ExportKind(
        "SELECT * FROM {schema}.messages WHERE sender_id = %(user)s AND id > %(after)s ORDER BY id "
        "LIMIT %(limit)s",
        key="id"),
}
