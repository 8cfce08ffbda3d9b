"""Messaging in PostgreSQL: a conversation's rows in its shard, each user's list in theirs.

A conversation, its members, messages, reactions and envelopes live in the
shard its id names; `user_conversations` (folder, mute, newest activity) in
each member's shard. A change that touches both (a message moves every
member's newest activity) writes them in one transaction per physical
database (db.transaction), with its event in the conversation shard's outbox.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from services.common import outbox
from services.common.db import Database, shard_schema
from services.common.ids import shard_of
from services.messaging.events import TOPIC, MessagingEvent
from services.messaging.service import (
    Conversation,
    Member,
    Message,
    NewMessage,
    UserView,
)

UNREAD_CAP = 1000
CONVERSATION_COLUMNS = "id, is_group, secret, title, creator_id, last_message_id, created_at"
MESSAGE_COLUMNS = ("conversation_id, id, sender_id, client_message_id, kind, text, media_id, post_id, story_id, "
                   "unsent, created_at, hidden_at IS NOT NULL")


def _s(entity_id: int) -> str:
    return shard_schema(shard_of(entity_id))


def _conversation(row: tuple) -> Conversation:
    return Conversation(*row)


def _message(row: tuple) -> Message:
    return Message(*row)


class PostgresMessagingStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def holds(self, entity_id: int) -> bool:
        return self.db.holds(entity_id)

    # --- reads ---------------------------------------------------------------

    async def conversation(self, conversation_id: int) -> Conversation | None:
        async with self.db.for_shard(shard_of(conversation_id)).connection() as conn:
            row = await (await conn.execute(
                f"SELECT {CONVERSATION_COLUMNS} FROM {_s(conversation_id)}.conversations WHERE id = %s",
                (conversation_id,))).fetchone()
        return _conversation(row) if row else None

    async def conversations(self, ids: list[int]) -> dict[int, Conversation]:
        rows = await self.db.select_by_shard(
            ids, f"SELECT {CONVERSATION_COLUMNS} FROM {{schema}}.conversations WHERE id = ANY(%s)")
        return {row[0]: _conversation(row) for row in rows}

    async def members(self, ids: list[int]) -> dict[int, list[Member]]:
        """Each conversation's members (ACTIVE and DECLINED: the people in it), in joining order."""
        rows = await self.db.select_by_shard(
            ids, "SELECT m.conversation_id, m.user_id, m.state, m.last_read_id, m.history_from "
                 "FROM {schema}.conversation_members m JOIN {schema}.conversations c ON c.id = m.conversation_id "
                 "WHERE m.conversation_id = ANY(%s) AND m.state IN ('ACTIVE', 'DECLINED') "
                 "ORDER BY m.joined_at, m.user_id <> c.creator_id, m.user_id")
        found: dict[int, list[Member]] = {i: [] for i in ids}
        for conversation_id, *rest in rows:
            found[conversation_id].append(Member(*rest))
        return found

    async def member(self, conversation_id: int, user_id: int) -> Member | None:
        async with self.db.for_shard(shard_of(conversation_id)).connection() as conn:
            row = await (await conn.execute(
                f"SELECT user_id, state, last_read_id, history_from FROM {_s(conversation_id)}.conversation_members "
                "WHERE conversation_id = %s AND user_id = %s", (conversation_id, user_id))).fetchone()
        return Member(*row) if row else None

    async def contacts(self, user_id: int, among: list[int] | None, limit: int) -> set[int]:
        """Who shares an accepted conversation with the user: the other active members of the user's
        `limit` most recently active inbox conversations who have it in their inbox too."""
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            ids = [row[0] for row in await (await conn.execute(
                f"SELECT conversation_id FROM {_s(user_id)}.user_conversations WHERE user_id = %s "
                "AND folder = 'INBOX' ORDER BY last_activity_id DESC LIMIT %s", (user_id, limit))).fetchall()]
        if not ids:
            return set()
        others = {m.user_id for members in (await self.members(ids)).values() for m in members
                  if m.state == "ACTIVE" and m.user_id != user_id}
        if among is not None:
            others &= set(among)
        if not others:
            return set()
        rows = await self.db.select_by_shard(
            list(others), "SELECT DISTINCT user_id FROM {schema}.user_conversations WHERE user_id = ANY(%s) "
                          "AND folder = 'INBOX' AND conversation_id = ANY(%s)", (ids,))
        return {row[0] for row in rows}

    async def user_views(self, user_id: int, ids: list[int]) -> dict[int, UserView]:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT conversation_id, folder, muted, last_activity_id FROM {_s(user_id)}.user_conversations "
                "WHERE user_id = %s AND conversation_id = ANY(%s)", (user_id, ids))).fetchall()
        return {row[0]: UserView(*row[1:]) for row in rows}

    async def user_views_of(self, conversation_id: int, user_ids: list[int]) -> dict[int, UserView]:
        """Each member's own view of one conversation (folder, mute)."""
        rows = await self.db.select_by_shard(
            user_ids, "SELECT user_id, folder, muted, last_activity_id FROM {schema}.user_conversations "
                      "WHERE user_id = ANY(%s) AND conversation_id = %s", (conversation_id,))
        return {row[0]: UserView(*row[1:]) for row in rows}

    async def listed(self, user_id: int, folder: str, limit: int,
                     after: tuple[int, int] | None) -> list[int]:
        """Conversation ids of the user's folder, newest activity first, after the cursor."""
        where, params = "", [user_id, folder]
        if after is not None:
            where = " AND (last_activity_id, conversation_id) < (%s, %s)"
            params += list(after)
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT conversation_id, last_activity_id FROM {_s(user_id)}.user_conversations "
                f"WHERE user_id = %s AND folder = %s AND last_activity_id > 0{where} "
                "ORDER BY last_activity_id DESC, conversation_id DESC LIMIT %s", (*params, limit))).fetchall()
        return [row[0] for row in rows]

    async def activity_of(self, user_id: int, conversation_id: int) -> int:
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            row = await (await conn.execute(
                f"SELECT last_activity_id FROM {_s(user_id)}.user_conversations "
                "WHERE user_id = %s AND conversation_id = %s", (user_id, conversation_id))).fetchone()
        return row[0] if row else 0

    async def unread_counts(self, viewer_id: int, conversation_ids: list[int]) -> dict[int, int]:
        """conversation id -> messages of others after the viewer's last read one (up to UNREAD_CAP)."""
        rows = await self.db.select_by_shard(
            conversation_ids,
            "SELECT cm.conversation_id, (SELECT count(*) FROM (SELECT 1 FROM {schema}.messages m "
            "WHERE m.conversation_id = cm.conversation_id AND m.id > GREATEST(cm.last_read_id, cm.history_from) "
            f"AND m.sender_id <> cm.user_id AND NOT m.unsent LIMIT {UNREAD_CAP}) u) "
            "FROM {schema}.conversation_members cm WHERE cm.conversation_id = ANY(%s) AND cm.user_id = %s",
            (viewer_id,))
        return {row[0]: row[1] for row in rows}

    async def messages_by_id(self, ids: list[int]) -> dict[int, Message]:
        rows = await self.db.select_by_shard(
            ids, f"SELECT {MESSAGE_COLUMNS} FROM {{schema}}.messages WHERE id = ANY(%s)")
        return {row[1]: _message(row) for row in rows}

    async def message(self, message_id: int) -> Message | None:
        return (await self.messages_by_id([message_id])).get(message_id)

    async def message_by_client_id(self, conversation_id: int, sender_id: int, client_message_id: str
                                   ) -> Message | None:
        async with self.db.for_shard(shard_of(conversation_id)).connection() as conn:
            row = await (await conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM {_s(conversation_id)}.messages "
                "WHERE conversation_id = %s AND sender_id = %s AND client_message_id = %s",
                (conversation_id, sender_id, client_message_id))).fetchone()
        return _message(row) if row else None

    async def page(self, conversation_id: int, after_id: int, before_id: int | None, limit: int) -> list[Message]:
        """Messages newest first: ids in (after_id, before_id), unsent ones left out. One index range."""
        bound, params = "", [conversation_id, after_id]
        if before_id is not None:
            bound = " AND id < %s"
            params.append(before_id)
        async with self.db.for_shard(shard_of(conversation_id)).connection() as conn:
            rows = await (await conn.execute(
                f"SELECT {MESSAGE_COLUMNS} FROM {_s(conversation_id)}.messages "
                f"WHERE conversation_id = %s AND id > %s{bound} AND NOT unsent ORDER BY id DESC LIMIT %s",
                (*params, limit))).fetchall()
        return [_message(row) for row in rows]

    async def reactions(self, message_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
        rows = await self.db.select_by_shard(
            message_ids, "SELECT message_id, user_id, emoji FROM {schema}.message_reactions "
                         "WHERE message_id = ANY(%s) ORDER BY created_at, user_id")
        found: dict[int, list[tuple[int, str]]] = {}
        for message_id, user_id, emoji in rows:
            found.setdefault(message_id, []).append((user_id, emoji))
        return found

    async def envelopes(self, message_ids: list[int], user_id: int | None) -> dict[int, list[tuple[int, int, bytes]]]:
        """message id -> (device_id, user_id, ciphertext), of one user's devices (None: every device)."""
        extra, where = (), ""
        if user_id is not None:
            extra, where = (user_id,), " AND user_id = %s"
        rows = await self.db.select_by_shard(
            message_ids, "SELECT message_id, device_id, user_id, ciphertext FROM {schema}.message_envelopes "
                         f"WHERE message_id = ANY(%s){where} ORDER BY device_id", extra)
        found: dict[int, list[tuple[int, int, bytes]]] = {}
        for message_id, device_id, owner, ciphertext in rows:
            found.setdefault(message_id, []).append((device_id, owner, bytes(ciphertext)))
        return found

    # --- writes --------------------------------------------------------------

    async def create_direct(self, conversation: Conversation, low: int, high: int, creator_id: int,
                            folders: dict[int, str]) -> tuple[int, bool]:
        """The pair's conversation: the existing one's id, or `conversation` made now; (id, made)."""
        s = _s(low)
        shards = [shard_of(low), shard_of(creator_id), *(shard_of(u) for u in folders)]
        async with self.db.transaction(*shards) as conns:
            conn = conns[0]
            cur = await conn.execute(
                f"INSERT INTO {s}.direct_conversations (user_low, user_high, secret, conversation_id) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", (low, high, conversation.secret, conversation.id))
            if cur.rowcount == 0:
                row = await (await conn.execute(
                    f"SELECT conversation_id FROM {s}.direct_conversations WHERE user_low = %s AND user_high = %s "
                    "AND secret = %s", (low, high, conversation.secret))).fetchone()
                return row[0], False
            await self._insert_conversation(conn, conversation, [low, high])
            await self._insert_views(conns[1:], conversation.id, creator_id, folders)
        return conversation.id, True

    async def create_group(self, conversation: Conversation, member_ids: list[int], folders: dict[int, str]) -> None:
        shards = [shard_of(conversation.id), shard_of(conversation.creator_id), *(shard_of(u) for u in folders)]
        async with self.db.transaction(*shards) as conns:
            await self._insert_conversation(conns[0], conversation, member_ids)
            await self._insert_views(conns[1:], conversation.id, conversation.creator_id, folders)

    async def _insert_conversation(self, conn: psycopg.AsyncConnection, c: Conversation, member_ids: list[int]) -> None:
        s = _s(c.id)
        await conn.execute(
            f"INSERT INTO {s}.conversations (id, is_group, secret, title, creator_id) VALUES (%s, %s, %s, %s, %s)",
            (c.id, c.is_group, c.secret, c.title, c.creator_id))
        for user_id in member_ids:
            await conn.execute(
                f"INSERT INTO {s}.conversation_members (conversation_id, user_id, state) VALUES (%s, %s, 'ACTIVE')",
                (c.id, user_id))

    async def _insert_views(self, conns: list[psycopg.AsyncConnection], conversation_id: int, creator_id: int,
                            folders: dict[int, str]) -> None:
        """The creator's row (listed at once: its activity is the creation) and the others' (listed once a
        message comes); conns: the creator's shard's connection, then each other's in `folders` order."""
        await self._upsert_view(conns[0], creator_id, conversation_id, "INBOX", conversation_id)
        for conn, (user_id, folder) in zip(conns[1:], folders.items(), strict=True):
            await self._upsert_view(conn, user_id, conversation_id, folder, 0)

    @staticmethod
    async def _upsert_view(conn: psycopg.AsyncConnection, user_id: int, conversation_id: int, folder: str,
                           activity: int) -> None:
        await conn.execute(
            f"INSERT INTO {_s(user_id)}.user_conversations (user_id, conversation_id, folder, last_activity_id) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (user_id, conversation_id) DO UPDATE SET folder = excluded.folder, "
            "last_activity_id = GREATEST(user_conversations.last_activity_id, excluded.last_activity_id)",
            (user_id, conversation_id, folder, activity))

    async def rejoin(self, conversation_id: int, user_id: int, activity: int) -> None:
        """A member who declined the pair's conversation starts it again: active, in their INBOX."""
        async with self.db.transaction(shard_of(conversation_id), shard_of(user_id)) as (conn, mine):
            await conn.execute(
                f"UPDATE {_s(conversation_id)}.conversation_members SET state = 'ACTIVE' "
                "WHERE conversation_id = %s AND user_id = %s", (conversation_id, user_id))
            await self._upsert_view(mine, user_id, conversation_id, "INBOX", activity)

    async def add_members(self, conversation_id: int, folders: dict[int, str], history_from: int) -> None:
        async with self.db.transaction(shard_of(conversation_id), *(shard_of(u) for u in folders)) as conns:
            for user_id in folders:
                await conns[0].execute(
                    f"INSERT INTO {_s(conversation_id)}.conversation_members (conversation_id, user_id, state, "
                    "history_from) VALUES (%s, %s, 'ACTIVE', %s) ON CONFLICT (conversation_id, user_id) DO UPDATE "
                    "SET state = 'ACTIVE', history_from = excluded.history_from, last_read_id = 0, joined_at = now()",
                    (conversation_id, user_id, history_from))
            for conn, (user_id, folder) in zip(conns[1:], folders.items(), strict=True):
                await self._upsert_view(conn, user_id, conversation_id, folder, history_from or conversation_id)

    async def end_membership(self, conversation_id: int, user_id: int, state: str) -> bool:
        """The member stops getting the conversation (LEFT, REMOVED, DECLINED); False when not active."""
        async with self.db.transaction(shard_of(conversation_id), shard_of(user_id)) as (conn, mine):
            cur = await conn.execute(
                f"UPDATE {_s(conversation_id)}.conversation_members SET state = %s "
                "WHERE conversation_id = %s AND user_id = %s AND state = 'ACTIVE'", (state, conversation_id, user_id))
            await mine.execute(f"DELETE FROM {_s(user_id)}.user_conversations WHERE user_id = %s "
                               "AND conversation_id = %s", (user_id, conversation_id))
        return cur.rowcount == 1

    async def update_view(self, user_id: int, conversation_id: int, **changes: object) -> None:
        allowed = {"folder", "muted"}
        if not changes or set(changes) - allowed:
            raise ValueError(f"a view changes {allowed}, not {sorted(set(changes) - allowed)}")
        assignments = ", ".join(f"{name} = %s" for name in changes)
        async with self.db.for_shard(shard_of(user_id)).connection() as conn:
            await conn.execute(
                f"UPDATE {_s(user_id)}.user_conversations SET {assignments} WHERE user_id = %s AND conversation_id = %s",
                (*changes.values(), user_id, conversation_id))

    async def set_title(self, conversation_id: int, title: str) -> None:
        async with self.db.for_shard(shard_of(conversation_id)).connection() as conn:
            await conn.execute(f"UPDATE {_s(conversation_id)}.conversations SET title = %s WHERE id = %s",
                               (title, conversation_id))

    async def add_message(self, m: NewMessage, active: list[int], event: MessagingEvent
                          ) -> tuple[Message, bool]:
        """Insert the message (unless the sender's client id is there already: that one, False), move every
        active member's newest activity to it, and write message.created, in one transaction per database."""
        shards = [shard_of(m.conversation_id), *(shard_of(u) for u in active)]
        if not m.envelopes and len(self.db.urls_of(shards)) == 1:
            return await self._add_message_in_one_statement(m, active, event)
        s = _s(m.conversation_id)
        async with self.db.transaction(*shards) as conns:
            conn = conns[0]
            row = await (await conn.execute(
                f"INSERT INTO {s}.messages (conversation_id, id, sender_id, client_message_id, kind, text, media_id, "
                "post_id, story_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING "
                f"RETURNING {MESSAGE_COLUMNS}",
                (m.conversation_id, m.id, m.sender_id, m.client_message_id, m.kind, m.text, m.media_id, m.post_id,
                 m.story_id))).fetchone()
            if row is None:
                existing = await (await conn.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM {s}.messages WHERE conversation_id = %s AND sender_id = %s "
                    "AND client_message_id = %s", (m.conversation_id, m.sender_id, m.client_message_id))).fetchone()
                return _message(existing), False
            for device_id, user_id, ciphertext in m.envelopes:
                await conn.execute(
                    f"INSERT INTO {s}.message_envelopes (message_id, device_id, user_id, ciphertext) "
                    "VALUES (%s, %s, %s, %s)", (m.id, device_id, user_id, ciphertext))
            await conn.execute(f"UPDATE {s}.conversations SET last_message_id = GREATEST(last_message_id, %s) "
                               "WHERE id = %s", (m.id, m.conversation_id))
            for member_conn, user_id in zip(conns[1:], active, strict=True):
                # Replying to a request accepts it.
                folder = ", folder = 'INBOX'" if user_id == m.sender_id else ""
                await member_conn.execute(
                    f"UPDATE {_s(user_id)}.user_conversations SET last_activity_id = GREATEST(last_activity_id, %s)"
                    f"{folder} WHERE user_id = %s AND conversation_id = %s", (m.id, user_id, m.conversation_id))
            await self._publish(conn, m.conversation_id, "message.created", event)
        return _message(row), True

    async def _add_message_in_one_statement(self, m: NewMessage, active: list[int], event: MessagingEvent
                                            ) -> tuple[Message, bool]:
        """add_message as one statement (its own transaction, one round trip) when the conversation and
        every member's shard share a database: the send's hot path. The event's row reads the
        conversation's update, so it takes its seq after the conversation's lock, as in add_message."""
        s = _s(m.conversation_id)
        accepts = ", folder = 'INBOX'"  # replying to a request accepts it
        members = "".join(
            f", u{n} AS (UPDATE {_s(user_id)}.user_conversations SET last_activity_id = GREATEST(last_activity_id, "
            f"%(id)s){accepts if user_id == m.sender_id else ''} WHERE user_id = {int(user_id)} "
            "AND conversation_id = %(conversation_id)s AND EXISTS (SELECT 1 FROM m))"
            for n, user_id in enumerate(active))
        params = dict(zip(("event_id", "topic", "type", "payload", "wake"),
                          outbox.event_params(TOPIC, "message.created", **event.fields()), strict=True))
        async with self.db.for_shard(shard_of(m.conversation_id)).connection() as conn:
            row = await (await conn.execute(
                f"WITH m AS (INSERT INTO {s}.messages (conversation_id, id, sender_id, client_message_id, kind, text, "
                "media_id, post_id, story_id) VALUES (%(conversation_id)s, %(id)s, %(sender_id)s, %(client_message_id)s, "
                "%(kind)s, %(text)s, %(media_id)s, %(post_id)s, %(story_id)s) ON CONFLICT DO NOTHING "
                f"RETURNING {MESSAGE_COLUMNS}), "
                f"c AS (UPDATE {s}.conversations SET last_message_id = GREATEST(last_message_id, %(id)s) "
                "WHERE id = %(conversation_id)s AND EXISTS (SELECT 1 FROM m) RETURNING 1)"
                f"{members}, "
                f"o AS (INSERT INTO {s}.outbox (event_id, topic, type, payload, wake) "
                "SELECT %(event_id)s, %(topic)s, %(type)s, %(payload)s, %(wake)s FROM c) "
                "SELECT * FROM m",
                {"conversation_id": m.conversation_id, "id": m.id, "sender_id": m.sender_id,
                 "client_message_id": m.client_message_id, "kind": m.kind, "text": m.text, "media_id": m.media_id,
                 "post_id": m.post_id, "story_id": m.story_id, **params})).fetchone()
            if row is None:
                existing = await (await conn.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM {s}.messages WHERE conversation_id = %s AND sender_id = %s "
                    "AND client_message_id = %s", (m.conversation_id, m.sender_id, m.client_message_id))).fetchone()
                return _message(existing), False
        return _message(row), True

    async def unsend(self, message: Message, event: MessagingEvent) -> bool:
        """Scrub the message for everyone (content, reactions, envelopes); False when it was unsent already."""
        s = _s(message.conversation_id)
        async with self.db.transaction(shard_of(message.conversation_id)) as (conn,):
            cur = await conn.execute(
                f"UPDATE {s}.messages SET unsent = true, text = '', media_id = 0, post_id = 0, story_id = 0 "
                "WHERE conversation_id = %s AND id = %s AND NOT unsent", (message.conversation_id, message.id))
            if cur.rowcount == 0:
                return False
            await conn.execute(f"DELETE FROM {s}.message_reactions WHERE message_id = %s", (message.id,))
            await conn.execute(f"DELETE FROM {s}.message_envelopes WHERE message_id = %s", (message.id,))
            await conn.execute(
                f"UPDATE {s}.conversations SET last_message_id = COALESCE((SELECT max(id) FROM {s}.messages "
                "WHERE conversation_id = %s AND NOT unsent), 0) WHERE id = %s AND last_message_id = %s",
                (message.conversation_id, message.conversation_id, message.id))
            await self._publish(conn, message.conversation_id, "message.unsent", event)
        return True

    async def set_reaction(self, message: Message, user_id: int, emoji: str | None,
                           event_of: Callable[[list[tuple[int, str]]], MessagingEvent]) -> list[tuple[int, str]] | None:
        """Set (emoji) or take back (None) the user's reaction; the reactions after, None when nothing changed.
        `event_of(reactions)` makes the message.reacted event written with the change."""
        s = _s(message.conversation_id)
        async with self.db.transaction(shard_of(message.conversation_id)) as (conn,):
            if emoji is None:
                cur = await conn.execute(f"DELETE FROM {s}.message_reactions WHERE message_id = %s AND user_id = %s",
                                         (message.id, user_id))
            else:
                cur = await conn.execute(
                    f"INSERT INTO {s}.message_reactions (message_id, user_id, emoji) VALUES (%s, %s, %s) "
                    "ON CONFLICT (message_id, user_id) DO UPDATE SET emoji = excluded.emoji, created_at = now() "
                    "WHERE message_reactions.emoji <> excluded.emoji", (message.id, user_id, emoji))
            if cur.rowcount == 0:
                return None
            rows = await (await conn.execute(
                f"SELECT user_id, emoji FROM {s}.message_reactions WHERE message_id = %s ORDER BY created_at, user_id",
                (message.id,))).fetchall()
            reactions = [(r[0], r[1]) for r in rows]
            await self._publish(conn, message.conversation_id, "message.reacted", event_of(reactions))
        return reactions

    async def mark_read(self, conversation_id: int, user_id: int, message_id: int,
                        event: MessagingEvent | None) -> bool:
        """Move the member's last read message forward (never back); the receipt's event when it moved."""
        s = _s(conversation_id)
        async with self.db.transaction(shard_of(conversation_id)) as (conn,):
            cur = await conn.execute(
                f"UPDATE {s}.conversation_members SET last_read_id = %s WHERE conversation_id = %s AND user_id = %s "
                "AND last_read_id < %s", (message_id, conversation_id, user_id, message_id))
            if cur.rowcount == 0:
                return False
            if event is not None:
                await self._publish(conn, conversation_id, "message.read", event)
        return True

    @staticmethod
    async def _publish(conn: psycopg.AsyncConnection, conversation_id: int, type: str, event: MessagingEvent) -> None:
        await outbox.write(conn, shard_of(conversation_id), TOPIC, type, **event.fields())


    async def hide_message(self, message_id: int) -> None:
        """A moderator hid the message (services.messaging.moderation): its sender alone still sees it."""
        if self.holds(message_id):
            async with self.db.for_shard(shard_of(message_id)).connection() as conn:
                await conn.execute(f"UPDATE {_s(message_id)}.messages SET hidden_at = coalesce(hidden_at, now()) "
                                   "WHERE id = %s", (message_id,))
