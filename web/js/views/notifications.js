// The notification centre: grouped lines, newest first; lines arrive and change live from the
// stream; opening the screen marks everything read.
import { api, describe } from "../api.js";
import { ago, h, onReachEnd, userLink } from "../dom.js";
import { readAgain, renewing, variant } from "../photo.js";

const VERBS = {
  LIKE: "liked your post", COMMENT: "commented on your post", REPLY: "replied to your comment",
  MENTION: "mentioned you", FOLLOW: "started following you", FOLLOW_REQUEST: "asked to follow you",
  FOLLOW_ACCEPTED: "accepted your follow request",
};

function who(group) {
  const actors = group.actors || [];
  const others = Number(group.actor_count || actors.length) - Math.min(actors.length, 2);
  const shown = actors.slice(0, 2).map(userLink);
  const parts = shown.length === 2 ? [shown[0], others > 0 ? ", " : " and ", shown[1]] : shown;
  if (others > 0) parts.push(` and ${others} other${others > 1 ? "s" : ""}`);
  return parts;
}

export function line(group) {
  const target = group.post?.id ? `#/p/${group.post.id}`
    : group.type === "FOLLOW_REQUEST" ? "#/requests"
    : group.actors?.[0] ? `#/u/${encodeURIComponent(group.actors[0].username)}` : null;
  const thumb = group.post?.thumbnail_url
    ? renewing(h("img.thumb", { src: group.post.thumbnail_url, alt: "Your post", loading: "lazy" }), async () => {
      const media = (await readAgain(`/v1/posts/${group.post.id}`)).media[0];
      return media && { src: variant(media, "150.webp") };
    }) : null;
  return h(`li.notification${group.unread ? ".unread" : ""}`, { dataset: { key: group.group_key } },
    h("p", {}, ...who(group), ` ${VERBS[group.type] || group.type.toLowerCase()} `,
      h("time", { datetime: group.latest_at }, ago(group.latest_at))),
    target ? h("a.open", { href: target, "aria-label": "Open" }, thumb || "›") : thumb);
}

export async function notificationsScreen(main, { signal, setUnread }) {
  const list = h("ul.notifications", { "aria-live": "polite" });
  const sentinel = h("div.sentinel", { "aria-hidden": "true" });
  const status = h("p.status");
  main.append(h("section.card", {}, h("h1", {}, "Notifications"), list, status, sentinel));
  let token = "";
  let marked = false;
  onReachEnd(sentinel, async () => {
    const query = new URLSearchParams({ page_size: "30" });
    if (token) query.set("page_token", token);
    try {
      const r = await api(`/v1/notifications?${query}`, { signal });
      for (const g of r.groups) if (!list.querySelector(`[data-key="${CSS.escape(g.group_key)}"]`)) list.append(line(g));
      status.textContent = list.children.length ? "" : "Nothing yet: likes, comments and follows show up here.";
      token = r.next_page_token;
      if (!marked) {
        marked = true;
        const read = await api("/v1/notifications:markRead", { method: "POST", body: {} });
        setUnread(read.unread_count);
      }
      return Boolean(token);
    } catch (e) {
      if (e.name !== "AbortError") status.textContent = describe(e);
      return false;
    }
  });

  // Live: a new or changed group moves to the top; a group taken back goes.
  const onEvent = (event) => {
    const { group_key: key, group, removed } = event.detail;
    list.querySelector(`[data-key="${CSS.escape(key)}"]`)?.remove();
    if (!removed && group) list.prepend(line({ ...group, group_key: key }));
    status.textContent = list.children.length ? "" : status.textContent;
  };
  document.addEventListener("pictor:notification", onEvent);
  signal.addEventListener("abort", () => document.removeEventListener("pictor:notification", onEvent));
}
