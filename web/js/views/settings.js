// Settings: which notifications I get, the email digest, whether people see when I am active,
// my close friends (who sees my close-friends stories), the accounts I block; and signing out.
import { api, ApiError, describe, signOut, updateMe } from "../api.js";
import { h, toast, userLink } from "../dom.js";

const KINDS = [
  ["LIKE", "Likes of my posts"], ["COMMENT", "Comments on my posts"], ["REPLY", "Replies to my comments"],
  ["MENTION", "Mentions"], ["FOLLOW", "New followers"], ["FOLLOW_REQUEST", "Follow requests"],
  ["FOLLOW_ACCEPTED", "Accepted follow requests"],
];

function check(id, label, checked, onchange) {
  return h("p.check", {}, h("input", { type: "checkbox", id, checked, onchange }), h("label", { for: id }, label));
}

function closeFriends(signal) {
  const list = h("ul.people.close-friends");
  const status = h("p.status");
  const error = h("p.error", { role: "alert" });
  const name = h("input", { id: "close-friend", name: "username", required: true, autocomplete: "off",
                            autocapitalize: "none", spellcheck: "false", placeholder: "username" });
  const row = (u) => h("li.person", { dataset: { id: u.id } }, h("div", {}, userLink(u)),
    h("button", { type: "button", "aria-label": `Remove ${u.username} from close friends`, onclick: async (event) => {
      try {
        await api(`/v1/users/me/close-friends/${u.id}`, { method: "DELETE" });
        event.target.closest("li").remove();
        toast(`${u.username} is no longer a close friend`);
      } catch (e) {
        toast(describe(e), "error");
      }
    } }, "Remove"));
  const form = h("form.inline-add", {}, h("label", { for: "close-friend" }, "Add a close friend"), name,
    h("button.primary", { type: "submit" }, "Add"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const username = name.value.trim().replace(/^@/, "");
    try {
      const user = await api(`/v1/usernames/${encodeURIComponent(username)}`).catch((e) => {
        throw e instanceof ApiError && (e.status === 404 || e.status === 400) ? new Error(`No account named “${username}”.`) : e;
      });
      await api(`/v1/users/me/close-friends/${user.id}`, { method: "PUT", body: {} });
      if (!list.querySelector(`[data-id="${user.id}"]`)) list.append(row(user));
      name.value = "";
      status.textContent = "";
      toast(`${user.username} is a close friend`);
    } catch (e) {
      error.textContent = describe(e);
      name.focus();
    }
  });
  api("/v1/users/me/close-friends?page_size=200", { signal }).then((r) => {
    list.replaceChildren(...(r.users || []).map(row));
    status.textContent = list.children.length ? "" : "Nobody yet: stories you share with close friends only reach them.";
  }).catch((e) => { if (e.name !== "AbortError") status.textContent = describe(e); });
  return h("section.card", { "aria-labelledby": "close-friends-title" },
    h("h2", { id: "close-friends-title" }, "Close friends"), list, status, form);
}

/** The accounts I block, newest first, in pages; each with Unblock. A blocked account's profile
 * is hidden from me (and mine from it), so the names are not links. */
function blocked(signal) {
  const list = h("ul.people.blocked");
  const status = h("p.status");
  const more = h("button", { type: "button", hidden: true }, "Show more");
  let token = "";
  const row = (u) => h("li.person", { dataset: { id: u.id } },
    h("div", {}, h("strong", {}, u.username), u.display_name ? h("span.meta", {}, ` ${u.display_name}`) : null),
    h("button", { type: "button", "aria-label": `Unblock ${u.username}`, onclick: async (event) => {
      const button = event.target;
      button.disabled = true;
      try {
        await api(`/v1/users/${u.id}/block`, { method: "DELETE" });
        button.closest("li").remove();
        toast(`Unblocked ${u.username}`);
        if (!list.children.length && more.hidden) status.textContent = "You block no one.";
      } catch (e) {
        button.disabled = false;
        toast(describe(e), "error");
      }
    } }, "Unblock"));
  const load = async () => {
    more.disabled = true;
    try {
      const query = new URLSearchParams({ page_size: "50" });
      if (token) query.set("page_token", token);
      const r = await api(`/v1/users/me/blocked?${query}`, { signal });
      list.append(...(r.users || []).map(row));
      token = r.next_page_token || "";
      more.hidden = !token;
      status.textContent = list.children.length ? "" : "You block no one.";
    } catch (e) {
      if (e.name !== "AbortError") status.replaceChildren(h("span.error", { role: "alert" }, describe(e)));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  load();
  return h("section.card", { "aria-labelledby": "blocked-title" },
    h("h2", { id: "blocked-title" }, "Blocked accounts"), list, status, more);
}

export async function settingsScreen(main, { signal }) {
  const [settings, user] = await Promise.all([
    api("/v1/users/me/notification-settings", { signal }), api("/v1/users/me", { signal })]);
  const muted = new Set(settings.muted_types || []);
  const save = (path, body, done) => async (event) => {
    const box = event.target;
    box.disabled = true;
    try {
      done(await api(path, { method: "PATCH", body }));
      toast("Saved");
    } catch (e) {
      box.checked = !box.checked;
      toast(describe(e), "error");
    } finally {
      box.disabled = false;
    }
  };
  const kinds = KINDS.map(([kind, label]) => check(`notify-${kind}`, label, !muted.has(kind), (event) => {
    if (event.target.checked) muted.delete(kind);
    else muted.add(kind);
    return save("/v1/users/me/notification-settings?update_mask=muted_types", { muted_types: [...muted] }, () => {})(event);
  }));
  main.append(
    h("section.card", { "aria-labelledby": "notify-title" }, h("h1", { id: "notify-title" }, "Notifications"),
      h("fieldset", {}, h("legend", {}, "Notify me of"), ...kinds),
      check("email-digest", "Email me a digest of what I missed", Boolean(settings.email_digest), (event) =>
        save("/v1/users/me/notification-settings", { email_digest: event.target.checked }, () => {})(event))),
    h("section.card", { "aria-labelledby": "activity-title" }, h("h2", { id: "activity-title" }, "Activity status"),
      check("activity-status", "Let people I follow back see when I'm active", user.show_activity_status !== false,
        (event) => save("/v1/users/me", { show_activity_status: event.target.checked }, updateMe)(event))),
    closeFriends(signal),
    blocked(signal),
    h("section.card", {}, h("h2", {}, "Account"),
      h("p", {}, "Signed in as ", h("strong", {}, user.username), "."),
      h("button.danger", { type: "button", onclick: async () => { await signOut(); location.hash = "#/signin"; } },
        "Sign out")));
}
