// Settings: which notifications I get, the email digest, whether people see when I am active;
// and signing out.
import { api, describe, signOut, updateMe } from "../api.js";
import { h, toast } from "../dom.js";

const KINDS = [
  ["LIKE", "Likes of my posts"], ["COMMENT", "Comments on my posts"], ["REPLY", "Replies to my comments"],
  ["MENTION", "Mentions"], ["FOLLOW", "New followers"], ["FOLLOW_REQUEST", "Follow requests"],
  ["FOLLOW_ACCEPTED", "Accepted follow requests"],
];

function check(id, label, checked, onchange) {
  return h("p.check", {}, h("input", { type: "checkbox", id, checked, onchange }), h("label", { for: id }, label));
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
    h("section.card", {}, h("h2", {}, "Account"),
      h("p", {}, "Signed in as ", h("strong", {}, user.username), "."),
      h("button.danger", { type: "button", onclick: async () => { await signOut(); location.hash = "#/signin"; } },
        "Sign out")));
}
