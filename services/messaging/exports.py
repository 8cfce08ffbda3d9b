"""messaging's part of a data export (services.common.exports): the messages the user sent. The
messages others sent them are the senders' data and are not in it (README: "Your data"); an
end-to-end encrypted message's text was never on the server. Also: the conversations they are in
(with their state and read position), their reactions, and their devices' public keys."""

from __future__ import annotations

from services.common.exports import ExportKind

KINDS = {
    "messages": ExportKind(
        "SELECT * FROM {schema}.messages WHERE sender_id = %(user)s AND id > %(after)s ORDER BY id "
        "LIMIT %(limit)s",
        key="id"),
    "conversations": ExportKind(
        "SELECT conversation_id, state, last_read_id, joined_at FROM {schema}.conversation_members "
        "WHERE user_id = %(user)s AND conversation_id > %(after)s ORDER BY conversation_id LIMIT %(limit)s",
        key="conversation_id"),
    "message_reactions": ExportKind(
        "SELECT message_id, emoji, created_at FROM {schema}.message_reactions WHERE user_id = %(user)s "
        "AND message_id > %(after)s ORDER BY message_id LIMIT %(limit)s",
        key="message_id"),
    "devices": ExportKind(
        "SELECT id, public_key, created_at FROM {schema}.devices WHERE user_id = %(user)s AND id > "
        "%(after)s ORDER BY id LIMIT %(limit)s",
        key="id"),
}
