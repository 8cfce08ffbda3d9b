// The live stream (GET /v1/stream, Server-Sent Events). EventSource cannot send an Authorization
// header, so each connection is opened with a single-use ticket (POST /v1/stream:ticket) and never
// with the access token; after a drop, a new ticket and `since` the last event id seen: nothing lost.
import { api } from "./api.js";

// Messaging's events (each `{conversation_id, data}`), as realtime's dispatch worker names them.
const MESSAGING = ["message", "message_unsent", "message_reaction", "read_receipt", "typing"];

let source = null;
let lastId = "";
let retryTimer = null;
let attempt = 0;
let wanted = false;

function emit(type, data) {
  document.dispatchEvent(new CustomEvent(`pictor:${type}`, { detail: data }));
}

async function open() {
  clearTimeout(retryTimer);
  if (!wanted) return;
  let ticket;
  try {
    ticket = (await api("/v1/stream:ticket", { method: "POST", body: {} })).ticket;
  } catch {
    return retry();
  }
  if (!wanted) return;
  const query = new URLSearchParams({ ticket });
  if (lastId) query.set("since", lastId);
  source = new EventSource(`/v1/stream?${query}`);
  source.addEventListener("open", () => { attempt = 0; emit("stream-open", {}); });
  // The server sends a heartbeat as soon as the stream is set up: from then on every change comes
  // on it, so state read after this point misses nothing ("stream-ready", once per connection).
  source.addEventListener("heartbeat", () => emit("stream-ready", {}), { once: true });
  // A heartbeat carries the position reached: a stream dropped before any event came resumes there.
  source.addEventListener("heartbeat", (event) => { if (event.lastEventId) lastId = event.lastEventId; });
  for (const type of ["notification", "unread_count", "presence", "media_progress", "media_processed", ...MESSAGING]) {
    source.addEventListener(type, (event) => {
      if (event.lastEventId) lastId = event.lastEventId;
      emit(type, JSON.parse(event.data));
    });
  }
  source.addEventListener("resync", (event) => {
    if (event.lastEventId) lastId = event.lastEventId;
    emit("resync", {});
  });
  // The ticket was spent: EventSource's own reconnect would be refused, so reconnect here.
  source.addEventListener("error", () => {
    source.close();
    source = null;
    retry();
  });
}

function retry() {
  attempt += 1;
  retryTimer = setTimeout(open, Math.min(15000, 500 * 2 ** attempt));
}

// A device that goes offline would keep a dead connection until TCP gives up (minutes, on a phone):
// drop it at once, and open a new one (resuming from the last position) as soon as it is back.
addEventListener("offline", () => {
  clearTimeout(retryTimer);
  source?.close();
  source = null;
});
addEventListener("online", () => {
  if (!wanted || source) return;
  attempt = 0;
  open();
});

export function startStream() {
  if (wanted) return;
  wanted = true;
  attempt = 0;
  open();
}

export function stopStream() {
  wanted = false;
  lastId = "";
  clearTimeout(retryTimer);
  source?.close();
  source = null;
}
