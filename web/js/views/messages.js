// Direct messages (plain conversations; secret, end-to-end encrypted ones need a device's keys and
// are for apps that hold them): the inbox and requests, a conversation kept live from the stream
// (messages, typing, read receipts, reactions, unsends), starting one, sharing a post into one.
import { api, ApiError, describe, me } from "../api.js";
import { ago, avatar, h, toast } from "../dom.js";
import { postMedia, readAgain, renewingImg } from "../photo.js";
import { reportButton } from "../report.js";

const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 6000;
const REACTIONS = ["❤️", "😂", "😮", "😢", "🔥", "👍"];

/** Ids are int64 rendered as strings: compared as BigInt. */
const newer = (a, b) => BigInt(a || 0) > BigInt(b || 0);

function others(conversation) {
  return (conversation.members || []).map((m) => m.user).filter((u) => u && u.id !== me().id);
}

function title(conversation) {
  return conversation.title || others(conversation).map((u) => u.username).join(", ") || "Just you";
}

/** Find (or start) the one-to-one conversation with `username`; resolves to its id. */
export async function conversationWith(username) {
  let user;
  try {
    user = await api(`/v1/usernames/${encodeURIComponent(username)}`);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 400)) throw new Error(`No account named “${username}”.`);
    throw e;
  }
  return (await api("/v1/conversations", { method: "POST", body: { member_ids: [user.id] } })).id;
}

function preview(conversation) {
  const m = conversation.last_message;
  if (!m || !m.id) return "No messages yet";
  const mine = m.sender_id === me().id ? "You: " : "";
  const kind = m.kind || "";
  const what = m.text || (kind.endsWith("POST") ? "shared a post" : kind.endsWith("MEDIA") ? "sent a photo"
    : kind.endsWith("STORY") ? "replied to a story" : kind.endsWith("ENCRYPTED") ? "encrypted message" : "");
  return `${mine}${what}`;
}

export async function inboxScreen(main, { params, signal }) {
  const folder = params[0] === "requests" ? "REQUESTS" : "INBOX";
  const list = h("ul.conversations", { "aria-live": "polite" });
  const status = h("p.status");
  const error = h("p.error", { role: "alert" });
  const to = h("input", { id: "new-message-to", name: "to", placeholder: "username", autocomplete: "off",
                          autocapitalize: "none", spellcheck: "false", required: true });
  const start = h("form.new-message", {}, h("label", { for: "new-message-to" }, "New message to"), to,
    h("button.primary", { type: "submit" }, "Start"), error);
  start.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      location.hash = `#/direct/t/${await conversationWith(to.value.trim().replace(/^@/, ""))}`;
    } catch (e) {
      error.textContent = describe(e);
      to.focus();
    }
  });
  const tab = (label, href, on) => h("a.tab", { href, "aria-current": on ? "page" : null }, label);
  main.append(h("section.card", { "aria-labelledby": "inbox-title" },
    h("h1", { id: "inbox-title" }, "Messages"),
    h("nav.tabs", { "aria-label": "Folders" }, tab("Inbox", "#/direct", folder === "INBOX"),
      tab("Requests", "#/direct/requests", folder === "REQUESTS")),
    start, list, status));

  const load = async () => {
    try {
      const r = await api(`/v1/conversations?folder=${folder}&page_size=50`, { signal });
      list.replaceChildren(...r.conversations.map((c) => h(`li.conversation${Number(c.unread_count) ? ".unread" : ""}`, {},
        h("a", { href: `#/direct/t/${c.id}` },
          avatar(others(c)[0], "small"),
          h("span.summary", {}, h("strong", {}, title(c)), h("span.meta", {}, preview(c))),
          Number(c.unread_count) ? h("span.badge", { "aria-label": `${c.unread_count} unread` }, String(c.unread_count)) : null,
          h("time.meta", { datetime: c.last_activity_at }, ago(c.last_activity_at))))));
      status.textContent = list.children.length ? "" : folder === "INBOX"
        ? "No conversations yet: start one above, or from someone's profile." : "No message requests.";
    } catch (e) {
      if (e.name !== "AbortError") status.replaceChildren(h("span.error", { role: "alert" }, describe(e)));
    }
  };
  const onMessage = () => load();
  document.addEventListener("pictor:message", onMessage);
  signal.addEventListener("abort", () => document.removeEventListener("pictor:message", onMessage));
  await load();
}

function sharedPost(shared) {
  if (!shared || shared.unavailable || !shared.post) return h("p.meta", {}, "This post is unavailable.");
  const post = shared.post;
  const media = post.media?.[0];
  return h("a.shared-post", { href: `#/p/${post.id}` },
    media ? renewingImg({ alt: media.alt_text || `Post by ${post.author.username}`, loading: "lazy" }, media,
      "150.webp", () => postMedia(post.id, media.id)) : null,
    h("span", {}, h("strong", {}, post.author.username), " ", (post.caption || "").slice(0, 80)));
}

/** The message as the conversation's pages hold it now (fresh media URLs), or null past a few pages. */
async function messageAgain(message) {
  let token = "";
  for (let pages = 0; pages < 5; pages += 1) {
    const query = new URLSearchParams({ page_size: "100" });
    if (token) query.set("page_token", token);
    const r = await readAgain(`/v1/conversations/${message.conversation_id}/messages?${query}`);
    const found = r.messages.find((m) => m.id === message.id);
    if (found || !r.next_page_token) return found || null;
    token = r.next_page_token;
  }
  return null;
}

function body(message) {
  const kind = message.kind || "";
  if (kind.endsWith("POST")) return sharedPost(message.post);
  if (kind.endsWith("MEDIA") && message.media?.url_template) {
    return renewingImg({ class: "message-photo", alt: message.media.alt_text || "A photo", loading: "lazy" },
      message.media, "320.webp", async () => (await messageAgain(message))?.media);
  }
  if (kind.endsWith("STORY")) {
    // A story reply: the story while the reader may see it (the live stream carries only its id), then the text.
    const story = message.story?.story;
    const media = message.story?.unavailable ? null : story?.media;
    return h("div.story-reply", {},
      h("p.meta", {}, message.story?.unavailable ? "Replied to a story that is no longer available" : "Replied to a story"),
      media?.url_template ? renewingImg({ class: "message-photo", loading: "lazy",
        alt: media.alt_text || `Story by ${story.author?.username || "someone"}` }, media, "320.webp",
      async () => { const again = await messageAgain(message); return again?.story?.unavailable ? null : again?.story?.story?.media; })
        : null,
      message.text ? h("p.text", {}, message.text) : null);
  }
  if (kind.endsWith("ENCRYPTED")) return h("p.meta", {}, "Encrypted message: open it in an app that holds your keys.");
  return h("p.text", {}, message.text);
}

export async function conversationScreen(main, { params, signal }) {
  const id = params[0];
  const conversation = await api(`/v1/conversations/${id}`, { signal });
  const reads = new Map((conversation.members || []).map((m) => [m.user.id, m.last_read_message_id || "0"]));
  const people = new Map((conversation.members || []).map((m) => [m.user.id, m.user]));
  const list = h("ol.messages", { "aria-label": "Messages", "aria-live": "polite" });
  const seen = h("p.seen.meta", { "aria-live": "polite" });
  const typing = h("p.typing.meta", { "aria-live": "polite" });
  const older = h("button.link", { type: "button", hidden: true }, "Load older messages");
  const input = h("input", { id: "message-text", name: "text", maxlength: 2000, autocomplete: "off",
                             placeholder: "Message…", required: true });
  const error = h("p.error", { role: "alert" });
  const form = h("form.composer-line", {}, h("label.visually-hidden", { for: "message-text" }, "Message"), input,
    h("button.primary", { type: "submit" }, "Send"), error);
  let token = "";
  let markedUpTo = "0";
  let typingTimer = 0;
  let lastTypingSent = 0;

  // Each message's reactions as last heard (the list, or the stream's message_reaction).
  const reactions = new Map();
  const showReactions = (messageId, list) => {
    reactions.set(messageId, list || []);
    const li = listEl(messageId);
    if (!li) return;
    li.querySelector(".reactions-line").textContent = (list || []).map((r) => r.emoji).join(" ");
    const mineNow = (list || []).find((r) => r.user_id === me().id)?.emoji;
    for (const b of li.querySelectorAll(".react")) b.setAttribute("aria-pressed", String(b.dataset.emoji === mineNow));
  };
  const listEl = (messageId) => list.querySelector(`[data-id="${messageId}"]`);
  const unsent = (messageId) => { listEl(messageId)?.remove(); reactions.delete(messageId); renderSeen(); };

  // A message's actions, behind one button: react (again to take it back), unsend mine, report theirs.
  const actions = (m, mine, sender) => {
    const react = (emoji) => h("button.react", { type: "button", "aria-pressed": "false", dataset: { emoji },
      "aria-label": `React ${emoji}`, onclick: async () => {
        const given = (reactions.get(m.id) || []).find((r) => r.user_id === me().id)?.emoji;
        try {
          const updated = given === emoji
            ? await api(`/v1/messages/${m.id}/reactions`, { method: "DELETE", body: { emoji } })
            : await api(`/v1/messages/${m.id}/reactions`, { method: "POST", body: { emoji } });
          showReactions(m.id, updated.reactions);
        } catch (e) {
          toast(describe(e), "error");
        }
      } }, emoji);
    const tools = h("div.message-tools", { role: "group", "aria-label": "Message actions", hidden: true },
      ...REACTIONS.map(react),
      mine ? h("button.link", { type: "button", onclick: async () => {
        try {
          await api(`/v1/messages/${m.id}`, { method: "DELETE" });
          unsent(m.id);
          toast("Unsent");
        } catch (e) {
          toast(describe(e), "error");
        }
      } }, "Unsend") : reportButton("MESSAGE", m.id, `Report message from ${sender?.username || "someone"}`));
    const toggle = h("button.link.more", { type: "button", "aria-expanded": "false",
      "aria-label": mine ? "Actions for your message" : `Actions for the message from ${sender?.username || "someone"}`,
      onclick: () => {
        tools.hidden = !tools.hidden;
        toggle.setAttribute("aria-expanded", String(!tools.hidden));
        if (!tools.hidden) tools.querySelector("button").focus();
      } }, "⋯");
    return [toggle, tools];
  };
  const item = (m) => {
    const mine = m.sender_id === me().id;
    const sender = people.get(m.sender_id);
    const encrypted = (m.kind || "").endsWith("ENCRYPTED");
    return h(`li.message.${mine ? "mine" : "theirs"}`, { dataset: { id: m.id } },
      mine ? null : h("span.visually-hidden", {}, `${sender?.username || "Someone"}: `),
      body(m),
      h("span.reactions-line", { "aria-label": "Reactions" }),
      h("time.meta", { datetime: m.created_at }, ago(m.created_at)),
      encrypted ? null : actions(m, mine, sender));
  };
  const place = (m) => {
    if (list.querySelector(`[data-id="${m.id}"]`)) return;
    const later = [...list.children].find((li) => newer(li.dataset.id, m.id));
    list.insertBefore(item(m), later || null);
    showReactions(m.id, m.reactions);
  };
  const newestId = () => list.lastElementChild?.dataset.id || "0";
  const renderSeen = () => {
    const mine = [...list.querySelectorAll(".message.mine")].pop();
    if (!mine) { seen.textContent = ""; return; }
    const readers = [...reads].filter(([u, at]) => u !== me().id && !newer(mine.dataset.id, at)).map(([u]) => people.get(u));
    seen.textContent = !readers.length ? "" : conversation.is_group
      ? `Seen by ${readers.map((u) => u?.username).join(", ")}` : "Seen";
  };
  const markRead = () => {
    const newest = newestId();
    if (!newer(newest, markedUpTo) || document.hidden) return;
    markedUpTo = newest;
    api(`/v1/conversations/${id}:markRead`, { method: "POST", body: { message_id: newest } })
      .then(() => document.dispatchEvent(new CustomEvent("pictor:conversation-read", { detail: { id } })))
      .catch(() => {});
  };
  const scrollDown = () => list.lastElementChild?.scrollIntoView({ block: "end" });

  const loadPage = async () => {
    const query = new URLSearchParams({ page_size: "30" });
    if (token) query.set("page_token", token);
    const r = await api(`/v1/conversations/${id}/messages?${query}`, { signal });
    r.messages.forEach(place);
    token = r.next_page_token;
    older.hidden = !token;
  };
  older.addEventListener("click", () => loadPage().catch((e) => toast(describe(e), "error")));

  const request = conversation.folder === "REQUESTS" ? h("div.request-banner", {},
    h("p", {}, `${title(conversation)} wants to send you messages. They won't know you've seen them until you accept.`),
    h("button.primary", { type: "button", onclick: async () => {
      try {
        await api(`/v1/conversations/${id}:accept`, { method: "POST", body: {} });
        request.remove();
        toast("Accepted");
      } catch (e) { toast(describe(e), "error"); }
    } }, "Accept"),
    h("button", { type: "button", onclick: async () => {
      try {
        await api(`/v1/conversations/${id}:decline`, { method: "POST", body: {} });
        location.hash = "#/direct/requests";
      } catch (e) { toast(describe(e), "error"); }
    } }, "Decline")) : null;

  const names = others(conversation);
  main.append(h("section.card.conversation-view", { "aria-labelledby": "conversation-title" },
    h("header.conversation-head", {}, h("a", { href: "#/direct", "aria-label": "Back to messages" }, "‹"),
      h("h1", { id: "conversation-title" }, title(conversation)),
      names.length === 1 ? h("a", { href: `#/u/${encodeURIComponent(names[0].username)}` }, "Profile") : null),
    request, older, list, seen, typing, form));

  input.addEventListener("input", () => {
    const now = Date.now();
    if (!input.value || now - lastTypingSent < TYPING_EVERY_MS) return;
    lastTypingSent = now;
    api(`/v1/conversations/${id}:typing`, { method: "POST", body: {} }).catch(() => {});
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    error.textContent = "";
    try {
      const m = await api(`/v1/conversations/${id}/messages`, { method: "POST",
        body: { client_message_id: crypto.randomUUID(), text } });
      input.value = "";
      lastTypingSent = 0;
      place(m);
      markedUpTo = newer(m.id, markedUpTo) ? m.id : markedUpTo;
      renderSeen();
      scrollDown();
    } catch (e) {
      error.textContent = describe(e);
    }
  });

  // Live, from the stream: only this conversation's events.
  const ours = (event) => String(event.detail.conversation_id) === String(id);
  const handlers = {
    message: (d) => {
      place(d);
      if (d.sender_id !== me().id) {
        typing.textContent = "";
        markRead();
      }
      renderSeen();
      scrollDown();
    },
    message_unsent: (d) => unsent(d.message_id),
    message_reaction: (d) => showReactions(d.message_id || d.id, d.reactions),
    read_receipt: (d) => {
      if (newer(d.message_id, reads.get(d.user_id))) reads.set(d.user_id, d.message_id);
      renderSeen();
    },
    typing: (d) => {
      if (d.user_id === me().id) return;
      typing.textContent = `${people.get(d.user_id)?.username || "Someone"} is typing…`;
      clearTimeout(typingTimer);
      typingTimer = setTimeout(() => { typing.textContent = ""; }, TYPING_SHOWN_MS);
    },
  };
  const listeners = Object.entries(handlers).map(([type, handle]) => {
    const listener = (event) => { if (ours(event)) handle(event.detail.data || {}); };
    document.addEventListener(`pictor:${type}`, listener);
    return [type, listener];
  });
  const onVisible = () => markRead();
  document.addEventListener("visibilitychange", onVisible);
  signal.addEventListener("abort", () => {
    for (const [type, listener] of listeners) document.removeEventListener(`pictor:${type}`, listener);
    document.removeEventListener("visibilitychange", onVisible);
    clearTimeout(typingTimer);
  });

  await loadPage();
  if (!list.children.length) list.before(h("p.status.empty-conversation", {}, "Say hello."));
  renderSeen();
  markRead();
  scrollDown();
  input.focus();
}

/** A sheet to send `post` into one of my conversations (or to someone by username). */
export function sharePost(post) {
  const list = h("ul.share-targets");
  const error = h("p.error", { role: "alert" });
  const to = h("input", { id: "share-to", name: "to", placeholder: "username", autocomplete: "off", autocapitalize: "none" });
  const dialog = h("dialog.share", { "aria-labelledby": "share-title" });
  const send = async (conversationId, label) => {
    error.textContent = "";
    try {
      await api(`/v1/conversations/${conversationId}/messages`, { method: "POST",
        body: { client_message_id: crypto.randomUUID(), post_id: post.id } });
      toast(`Sent to ${label}`);
      dialog.close();
    } catch (e) {
      error.textContent = describe(e);
    }
  };
  const byName = h("form.share-to", {}, h("label", { for: "share-to" }, "Send to"), to,
    h("button.primary", { type: "submit" }, "Send"));
  byName.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = to.value.trim().replace(/^@/, "");
    if (!name) return;
    try {
      await send(await conversationWith(name), name);
    } catch (e) {
      error.textContent = describe(e);
    }
  });
  dialog.append(h("h2", { id: "share-title" }, "Share post"), list, byName, error,
    h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"));
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  api("/v1/conversations?folder=INBOX&page_size=20").then((r) => {
    list.replaceChildren(...r.conversations.map((c) => h("li", {},
      h("button", { type: "button", onclick: () => send(c.id, title(c)) }, `Send to ${title(c)}`))));
  }).catch((e) => { error.textContent = describe(e); });
}
