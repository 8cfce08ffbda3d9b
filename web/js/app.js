// The shell: hash routes to screens, the navigation, the unread badges (notifications, and
// conversations with unread messages) kept live from the stream.
import { api, currentSession, me } from "./api.js";
import { h } from "./dom.js";
import { startStream, stopStream } from "./stream.js";
import { signInScreen, signUpScreen } from "./views/auth.js";
import { composerScreen } from "./views/composer.js";
import { feedScreen } from "./views/feed.js";
import { conversationScreen, inboxScreen } from "./views/messages.js";
import { notificationsScreen } from "./views/notifications.js";
import { postScreen } from "./views/post.js";
import { editProfileScreen, followRequestsScreen, peopleScreen, profileScreen } from "./views/profile.js";
import { hashtagScreen, placeScreen, searchScreen } from "./views/search.js";
import { settingsScreen } from "./views/settings.js";
import { newStoryScreen } from "./views/stories.js";

const ROUTES = [
  [/^\/signin$/, signInScreen, { open: true }],
  [/^\/signup$/, signUpScreen, { open: true }],
  [/^\/$/, feedScreen, { nav: "feed" }],
  [/^\/new$/, composerScreen, { nav: "new" }],
  [/^\/notifications$/, notificationsScreen, { nav: "notifications" }],
  [/^\/settings$/, settingsScreen, { nav: "settings" }],
  [/^\/search(?:\?(.*))?$/, searchScreen, { nav: "search", keepFocus: true }],
  [/^\/tags\/([^/?]+)$/, hashtagScreen, { nav: "search" }],
  [/^\/places\/(\d+)$/, placeScreen, { nav: "search" }],
  [/^\/stories\/new$/, newStoryScreen, { nav: "feed" }],
  [/^\/direct(?:\/(requests))?$/, inboxScreen, { nav: "direct" }],
  [/^\/direct\/t\/(\d+)$/, conversationScreen, { nav: "direct", keepFocus: true }],
  [/^\/edit$/, editProfileScreen, { nav: "profile" }],
  [/^\/requests$/, followRequestsScreen, { nav: "profile" }],
  [/^\/p\/(\d+)$/, postScreen, {}],
  [/^\/u\/([^/]+)\/(followers|following)$/, peopleScreen, { nav: "profile" }],
  [/^\/u\/([^/]+)$/, profileScreen, { nav: "profile" }],
];

let current = null;

/** The badge on navigation item `nav`: hidden at 0; `text` when the count is only a floor ("50+"). */
function setBadge(nav, n, what, text = "") {
  const count = Math.max(0, Number(n) || 0);
  const badge = document.querySelector(`.nav [data-nav="${nav}"] .badge`);
  badge.hidden = count === 0;
  badge.textContent = text || (count > 99 ? "99+" : String(count));
  badge.setAttribute("aria-label", `${text || count} ${what}`);
}

// Every count that reaches the badge (a read, a stream event, marking read) takes a number; a read
// applies its answer only if nothing newer came meanwhile, so an answer that was slow to come back
// (asked before a notification existed) never hides one that is there.
let unreadSeq = 0;

function setUnread(n) {
  unreadSeq += 1;
  setBadge("notifications", n, "unread notifications");
}

async function readUnread(tries = 3) {
  const seq = ++unreadSeq;
  try {
    const r = await api("/v1/notifications:unreadCount");
    if (seq === unreadSeq && currentSession()) setBadge("notifications", r.count, "unread notifications");
  } catch {
    // A busy gateway (429, 503): ask again shortly, unless something newer came.
    if (tries > 1) setTimeout(() => { if (seq === unreadSeq && currentSession()) readUnread(tries - 1); }, 1000);
  }
}

// Conversations of my inbox with messages I have not read, counted on the most recently active
// page (the list is ordered by activity, so an unread one is near its top); recounted, at most
// every 300 ms, when the stream says a message came, went or was read.
const DM_PAGE = 50;
let dmTimer = 0;

function recountConversations() {
  clearTimeout(dmTimer);
  dmTimer = setTimeout(async () => {
    if (!currentSession()) return;
    try {
      const r = await api(`/v1/conversations?folder=INBOX&page_size=${DM_PAGE}`);
      const n = (r.conversations || []).filter((c) => Number(c.unread_count) > 0).length;
      setBadge("direct", n, "conversations with unread messages", n === DM_PAGE && r.next_page_token ? `${DM_PAGE}+` : "");
    } catch {
      // The next event tries again.
    }
  }, 300);
}

function signedInChrome(on) {
  document.querySelector(".nav").hidden = !on;
  document.querySelector(".top").hidden = !on;
  if (on) {
    startStream();
    readUnread();
    recountConversations();
  } else {
    stopStream();
    setUnread(0);
    clearTimeout(dmTimer);
    setBadge("direct", 0, "conversations with unread messages");
  }
}

async function route() {
  let path = decodeURIComponent(location.hash.slice(1) || "/");
  if (path === "/me" && me()) {
    location.replace(`#/u/${encodeURIComponent(me().username)}`);
    return;
  }
  const [pattern, screen, opts] = ROUTES.find(([re]) => re.test(path)) || [];
  if (!screen) {
    location.replace("#/");
    return;
  }
  if (!opts.open && !currentSession()) {
    location.replace("#/signin");
    return;
  }
  if (opts.open && currentSession()) {
    location.replace("#/");
    return;
  }
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === opts.nav) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  current?.abort();
  current = new AbortController();
  const main = document.querySelector("main");
  main.replaceChildren();
  main.dataset.screen = screen.name.replace(/Screen$/, "");
  const args = pattern.exec(path).slice(1);
  try {
    await screen(main, { params: args, signal: current.signal, setUnread });
  } catch (e) {
    main.append(h("p.error", { role: "alert" }, e.message || String(e)));
  }
  if (!opts.keepFocus) main.focus({ preventScroll: true });
}

document.addEventListener("pictor:unread_count", (e) => setUnread(e.detail.count));
// Read again once the stream carries every change: a notification made between the first read
// and the stream's set-up would otherwise never reach the badge.
document.addEventListener("pictor:stream-ready", () => readUnread());
for (const type of ["message", "message_unsent", "conversation-read", "stream-open", "stream-ready", "resync"]) {
  document.addEventListener(`pictor:${type}`, recountConversations);
}
// My own receipts (read here or on another device); others' do not change my unread count.
document.addEventListener("pictor:read_receipt", (e) => {
  if (String(e.detail.data?.user_id) === String(me()?.id)) recountConversations();
});
document.addEventListener("pictor:session", (e) => signedInChrome(Boolean(e.detail)));
document.querySelector(".find").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = event.target.elements.username;
  const name = input.value.trim().replace(/^@/, "");
  if (name) location.hash = `#/u/${encodeURIComponent(name)}`;
  input.value = "";
});
addEventListener("hashchange", route);
signedInChrome(Boolean(currentSession()));
route();
