"""messaging's part of a data export (services.common.exports): the messages the user sent. The
messages others sent them are the senders' data and are not in it (README: "Your data"); an
end-to-end encrypted message's text was never on the server. Also: the conversations they are in
(with their state and read position), their reactions, and their devices' public keys."""

from __future__ import annotations

from services.common.exports import rows_of

KINDS = {
    "messages": rows_of("messages", "sender_id", "id"),
    "conversations": rows_of("conversation_members", "user_id", "conversation_id", "state", "last_read_id",
                             "joined_at"),
    "message_reactions": rows_of("message_reactions", "user_id", "message_id", "emoji", "created_at"),
    "devices": rows_of("devices", "user_id", "id", "public_key", "created_at"),
}
