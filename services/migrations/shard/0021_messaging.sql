-- Messaging's tables (services/messaging). A conversation and everything in it
-- (members, messages, reactions, envelopes) live in the conversation's shard,
-- the one its id names; a user's list of conversations lives in the user's.

CREATE TABLE conversations (
    id bigint PRIMARY KEY,
    is_group boolean NOT NULL,
    secret boolean NOT NULL DEFAULT false,
    title text NOT NULL DEFAULT '',
    creator_id bigint NOT NULL,
    last_message_id bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per person ever in the conversation. ACTIVE members get its messages;
-- DECLINED ones (a request they declined) still show to the others but get
-- nothing; LEFT and REMOVED ones are no longer members.
CREATE TABLE conversation_members (
    conversation_id bigint NOT NULL,
    user_id bigint NOT NULL,
    state text NOT NULL CHECK (state IN ('ACTIVE', 'DECLINED', 'LEFT', 'REMOVED')),
    last_read_id bigint NOT NULL DEFAULT 0,
    -- Messages up to this id were sent before the member joined: not theirs to read.
    history_from bigint NOT NULL DEFAULT 0,
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, user_id)
);

-- The one-to-one conversation of a pair (and its secret one), in the shard of
-- the lower user id, where the conversation itself is made: one statement
-- decides which of two simultaneous creations wins.
CREATE TABLE direct_conversations (
    user_low bigint NOT NULL,
    user_high bigint NOT NULL,
    secret boolean NOT NULL,
    conversation_id bigint NOT NULL,
    PRIMARY KEY (user_low, user_high, secret)
);

-- Ids are time-ordered (hotpath ids), so (conversation_id, id) is the page
-- order: a page is one index range whatever the conversation's length.
CREATE TABLE messages (
    conversation_id bigint NOT NULL,
    id bigint NOT NULL,
    sender_id bigint NOT NULL,
    client_message_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('TEXT', 'MEDIA', 'POST', 'STORY', 'ENCRYPTED')),
    text text NOT NULL DEFAULT '',
    media_id bigint NOT NULL DEFAULT 0,
    post_id bigint NOT NULL DEFAULT 0,
    story_id bigint NOT NULL DEFAULT 0,
    -- Unsent: its content is scrubbed at once and it is listed no more; the row stays
    -- so that unsending again is harmless.
    unsent boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, id)
);
CREATE UNIQUE INDEX messages_by_id ON messages (id);
CREATE UNIQUE INDEX messages_by_client_id ON messages (conversation_id, sender_id, client_message_id);

-- A secret message's ciphertext per device: opaque bytes, never a plaintext.
CREATE TABLE message_envelopes (
    message_id bigint NOT NULL,
    device_id bigint NOT NULL,
    user_id bigint NOT NULL,
    ciphertext bytea NOT NULL,
    PRIMARY KEY (message_id, device_id)
);

CREATE TABLE message_reactions (
    message_id bigint NOT NULL,
    user_id bigint NOT NULL,
    emoji text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id)
);

-- A user's conversations (in the user's shard): the folder, the mute, and the
-- newest activity (a message id, time-ordered; 0 until there is a message, for
-- those who did not start it), which orders the list.
CREATE TABLE user_conversations (
    user_id bigint NOT NULL,
    conversation_id bigint NOT NULL,
    folder text NOT NULL CHECK (folder IN ('INBOX', 'REQUESTS')),
    muted boolean NOT NULL DEFAULT false,
    last_activity_id bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, conversation_id)
);
CREATE INDEX user_conversations_by_activity
    ON user_conversations (user_id, folder, last_activity_id DESC, conversation_id DESC);
