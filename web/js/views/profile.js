// Profiles: counts, the post grid, follow / unfollow / request, mute, block; followers and
// following lists; my follow requests; editing my profile.
import { api, ApiError, describe, me, updateMe } from "../api.js";
import { avatar, count, h, onReachEnd, toast, userLink } from "../dom.js";
import { postTile } from "../photo.js";
import { uploadFile } from "../upload.js";
import { reportButton } from "../report.js";
import { conversationWith } from "./messages.js";
import { highlightsRow } from "./stories.js";

async function userByName(name, signal) {
  try {
    return await api(`/v1/usernames/${encodeURIComponent(name)}`, { signal });
  } catch (e) {
    if (e instanceof ApiError && (e.status === 404 || e.status === 400)) return null;
    throw e;
  }
}

function notFound(main, name) {
  main.append(h("section.card.empty", {}, h("h1", {}, "Nobody here"),
    h("p", {}, `No account named “${name}” (or it is not yours to see).`)));
}

function followButton(user, onChange) {
  const button = h("button.primary.follow", { type: "button" });
  let state = user.viewer?.following ? "FOLLOWING" : user.viewer?.requested ? "REQUESTED" : "NONE";
  const render = () => {
    button.textContent = { NONE: "Follow", FOLLOWING: "Following", REQUESTED: "Requested" }[state];
    button.setAttribute("aria-pressed", String(state !== "NONE"));
    button.classList.toggle("primary", state === "NONE");
  };
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      if (state === "NONE") {
        state = (await api(`/v1/users/${user.id}/follow`, { method: "POST" })).state;
        onChange(state === "FOLLOWING" ? 1 : 0);
      } else {
        const was = state;
        await api(`/v1/users/${user.id}/follow`, { method: "DELETE" });
        state = "NONE";
        onChange(was === "FOLLOWING" ? -1 : 0);
      }
      render();
    } catch (e) {
      toast(describe(e), "error");
    } finally {
      button.disabled = false;
    }
  });
  render();
  return button;
}

/** A private account I do not follow: its posts, stories and highlights are not mine to see. */
function closedTo(user) {
  return Boolean(user.is_private && user.viewer && !user.viewer.following);
}

function grid(user, signal) {
  if (closedTo(user)) {
    return h("section.posts", { "aria-label": "Posts" },
      h("p.status", {}, "This account is private. Follow it to see its photos."));
  }
  const box = h("div.grid");
  const sentinel = h("div.sentinel", { "aria-hidden": "true" });
  const status = h("p.status");
  let token = "";
  const load = async () => {
    const query = new URLSearchParams({ page_size: "24" });
    if (token) query.set("page_token", token);
    try {
      const r = await api(`/v1/users/${user.id}/posts?${query}`, { signal });
      for (const post of r.posts) box.append(postTile({ author: user, ...post }));
      if (!box.children.length) status.textContent = "No posts yet.";
      token = r.next_page_token;
      return Boolean(token);
    } catch (e) {
      if (e.name === "AbortError") return false;
      status.textContent = describe(e);
      return false;
    }
  };
  const section = h("section.posts", { "aria-label": "Posts" }, box, status, sentinel);
  onReachEnd(sentinel, load);
  return section;
}

export async function profileScreen(main, { params, signal }) {
  const name = params[0];
  const user = await userByName(name, signal);
  if (!user) return notFound(main, name);
  const mine = me()?.id === user.id;
  const followers = h("span.n", {}, count(user.follower_count));
  const stat = (n, label, href) => h("li", {}, href ? h("a", { href }, n, ` ${label}`) : h("span", {}, n, ` ${label}`));
  const actions = h("div.profile-actions");
  if (mine) {
    actions.append(h("a.button", { href: "#/edit" }, "Edit profile"), h("a.button", { href: "#/requests" }, "Follow requests"));
  } else {
    actions.append(followButton(user, (d) => { followers.textContent = count(Number(user.follower_count) + d); }));
    let muted = Boolean(user.viewer?.muted);
    const mute = h("button", { type: "button", "aria-pressed": String(muted) }, muted ? "Unmute" : "Mute");
    mute.addEventListener("click", async () => {
      try {
        await api(`/v1/users/${user.id}/mute`, { method: muted ? "DELETE" : "POST" });
        muted = !muted;
        mute.textContent = muted ? "Unmute" : "Mute";
        mute.setAttribute("aria-pressed", String(muted));
        toast(muted ? `Muted ${user.username}: their posts leave your feed` : `Unmuted ${user.username}`);
      } catch (e) {
        toast(describe(e), "error");
      }
    });
    const block = h("button.danger", { type: "button" }, "Block");
    block.addEventListener("click", async () => {
      if (!confirm(`Block ${user.username}? You will no longer see each other, and follows both ways end.`)) return;
      try {
        await api(`/v1/users/${user.id}/block`, { method: "POST" });
        toast(`Blocked ${user.username}`);
        location.hash = "#/";
      } catch (e) {
        toast(describe(e), "error");
      }
    });
    const message = h("button", { type: "button" }, "Message");
    message.addEventListener("click", async () => {
      try {
        location.hash = `#/direct/t/${await conversationWith(user.username)}`;
      } catch (e) {
        toast(describe(e), "error");
      }
    });
    actions.append(message, mute, block,
      reportButton("ACCOUNT", user.id, `Report ${user.username}`, "button"));
  }
  const base = `#/u/${encodeURIComponent(user.username)}`;
  main.append(
    h("header.card.profile", {},
      avatar(user),
      h("div", {},
        h("div.title", {}, h("h1", {}, user.username), user.is_private ? h("span.lock", {}, "Private") : null),
        user.display_name ? h("p.name", {}, user.display_name) : null,
        user.bio ? h("p.bio", {}, user.bio) : null,
        h("ul.counts", {}, stat(count(user.post_count), "posts"), stat(followers, "followers", `${base}/followers`),
          stat(count(user.following_count), "following", `${base}/following`)),
        actions)),
    closedTo(user) ? null : highlightsRow(user, signal),
    grid(user, signal));
}

function peopleList(path, signal, row) {
  const list = h("ul.people");
  const sentinel = h("div.sentinel", { "aria-hidden": "true" });
  const status = h("p.status");
  let token = "";
  onReachEnd(sentinel, async () => {
    const query = new URLSearchParams({ page_size: "50" });
    if (token) query.set("page_token", token);
    try {
      const r = await api(`${path}?${query}`, { signal });
      for (const u of r.users) list.append(row(u));
      if (!list.children.length) status.textContent = "Nobody yet.";
      token = r.next_page_token;
      return Boolean(token);
    } catch (e) {
      if (e.name !== "AbortError") status.textContent = e.status === 403 ? "This account is private." : describe(e);
      return false;
    }
  });
  return [list, status, sentinel];
}

function person(u, ...extra) {
  return h("li.person", {}, avatar(u, "small"),
    h("div", {}, userLink(u), u.display_name ? h("p.name", {}, u.display_name) : null), h("span.spacer"), ...extra);
}

export async function peopleScreen(main, { params, signal }) {
  const [name, which] = params;
  const user = await userByName(name, signal);
  if (!user) return notFound(main, name);
  main.append(h("section.card", {}, h("h1", {}, `${which === "followers" ? "Followers of" : "Followed by"} ${user.username}`),
    ...peopleList(`/v1/users/${user.id}/${which}`, signal, (u) => person(u))));
}

export function followRequestsScreen(main, { signal }) {
  const answer = (u, verb) => async (event) => {
    const row = event.target.closest("li");
    try {
      await api(`/v1/follow-requests/${u.id}:${verb}`, { method: "POST", body: {} });
      row.replaceWith(h("li.person.done", {}, `${u.username}: ${verb === "approve" ? "approved" : "declined"}`));
    } catch (e) {
      toast(describe(e), "error");
    }
  };
  main.append(h("section.card", {}, h("h1", {}, "Follow requests"),
    ...peopleList("/v1/follow-requests", signal, (u) => person(u,
      h("button.primary", { type: "button", onclick: answer(u, "approve") }, "Approve"),
      h("button", { type: "button", onclick: answer(u, "reject") }, "Decline")))));
}

/** The profile picture: shown, changed (a photo goes up, then PATCH avatar_media_id) or removed; saved at once. */
function avatarPicker(user, error) {
  const picker = h("input", { type: "file", id: "avatar-file", accept: "image/*" });
  const shown = h("span", {}, avatar(user));
  const status = h("span.status", { role: "status" });
  const remove = h("button", { type: "button", hidden: !user.avatar_url }, "Remove photo");
  const set = async (mediaId, done) => {
    error.textContent = "";
    try {
      const updated = await api("/v1/users/me", { method: "PATCH", body: { avatar_media_id: mediaId } });
      updateMe(updated);
      Object.assign(user, updated);
      shown.replaceChildren(avatar(updated));
      remove.hidden = !updated.avatar_url;
      status.textContent = done;
    } catch (e) {
      status.textContent = "";
      error.textContent = describe(e);
    }
  };
  picker.addEventListener("change", async () => {
    const file = picker.files[0];
    picker.value = "";
    if (!file) return;
    status.textContent = "Uploading…";
    try {
      const media = await uploadFile(file, () => {});
      await set(media.id, "Profile photo changed");
    } catch (e) {
      status.textContent = "";
      error.textContent = describe(e);
    }
  });
  remove.addEventListener("click", () => set("0", "Profile photo removed"));
  return h("div.field.avatar-edit", {}, shown, picker,
    h("label.button", { for: "avatar-file" }, "Change profile photo"), remove, status);
}

export async function editProfileScreen(main, { signal }) {
  const user = await api("/v1/users/me", { signal });
  const error = h("p.error", { role: "alert" });
  const form = h("form.card", { "aria-labelledby": "edit-title" },
    h("h1", { id: "edit-title" }, "Edit profile"),
    h("p.field", {}, h("label", { for: "display_name" }, "Name"),
      h("input", { id: "display_name", name: "display_name", maxlength: 64, value: user.display_name || "" })),
    h("p.field", {}, h("label", { for: "bio" }, "Bio"),
      h("textarea", { id: "bio", name: "bio", maxlength: 150, rows: 3 }, user.bio || "")),
    h("p.check", {}, h("input", { type: "checkbox", id: "is_private", name: "is_private", checked: Boolean(user.is_private) }),
      h("label", { for: "is_private" }, "Private account: only people you approve see your posts")),
    error, h("button.primary", { type: "submit" }, "Save"));
  form.querySelector("h1").after(avatarPicker(user, error));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { display_name: form.elements.display_name.value, bio: form.elements.bio.value,
                   is_private: form.elements.is_private.checked };
    try {
      const updated = await api("/v1/users/me", { method: "PATCH", body });
      updateMe(updated);
      toast("Profile saved");
      location.hash = `#/u/${encodeURIComponent(updated.username)}`;
    } catch (e) {
      error.textContent = describe(e);
      form.elements[e.metadata?.field]?.focus();
    }
  });
  main.append(form);
}
