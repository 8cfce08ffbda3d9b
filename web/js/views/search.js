// Search and discovery: a search box with autocomplete (debounced; arrow keys, Enter, Escape),
// results by type, people to follow, the explore grid; a hashtag's page and a place's page.
import { api, ApiError, describe } from "../api.js";
import { count, counted, h, onReachEnd, userLink } from "../dom.js";
import { postTile } from "../photo.js";
import { suggest } from "../suggest.js";

const DEBOUNCE_MS = 250;

function suggestionHref(s) {
  if (s.user) return `#/u/${encodeURIComponent(s.user.username)}`;
  if (s.hashtag) return `#/tags/${encodeURIComponent(s.hashtag.name)}`;
  return `#/places/${s.place.id}`;
}

function suggestionLabel(s) {
  if (s.user) return [h("strong", {}, s.user.username), s.user.display_name ? h("span.meta", {}, ` ${s.user.display_name}`) : null];
  if (s.hashtag) return [h("strong", {}, `#${s.hashtag.name}`), h("span.meta", {}, ` ${counted(s.hashtag.post_count, "post")}`)];
  return [h("strong", {}, s.place.name), h("span.meta", {}, ` place · ${counted(s.place.post_count, "post")}`)];
}

/** A grid of posts from a paged route (`{posts, next_page_token}`), the next page on scroll. */
function postGrid(path, signal, empty) {
  const box = h("div.grid");
  const sentinel = h("div.sentinel", { "aria-hidden": "true" });
  const status = h("p.status");
  let token = "";
  onReachEnd(sentinel, async () => {
    const query = new URLSearchParams({ page_size: "24" });
    if (token) query.set("page_token", token);
    try {
      const r = await api(`${path}${path.includes("?") ? "&" : "?"}${query}`, { signal });
      for (const post of r.posts || []) box.append(postTile(post));
      if (!box.children.length) status.textContent = empty;
      token = r.next_page_token;
      return Boolean(token);
    } catch (e) {
      if (e.name !== "AbortError") status.replaceChildren(h("span.error", { role: "alert" }, describe(e)));
      return false;
    }
  });
  return [box, status, sentinel];
}

function searchBox(onSearch, initial) {
  const input = h("input", { id: "search-q", type: "search", name: "q", value: initial, maxlength: 100, autocomplete: "off",
                             autocapitalize: "none", spellcheck: "false", role: "combobox",
                             placeholder: "Search people, #tags, places" });
  const { box, close } = suggest(input, {
    id: "search-suggestions", label: "Suggestions", optionId: "suggestion-", debounce: DEBOUNCE_MS,
    // Enter searches for the text unless an option was chosen with the arrows; Tab moves on; the
    // arrows bring back a list closed with Escape.
    reopen: true,
    load: async (signal) => {
      const q = input.value.trim();
      if (!q) return [];
      return (await api(`/v1/search:autocomplete?q=${encodeURIComponent(q)}`, { signal })).suggestions || [];
    },
    render: suggestionLabel,
    take: (s) => { location.hash = suggestionHref(s); },
  });
  const form = h("form.search", { role: "search" }, h("label.visually-hidden", { for: "search-q" }, "Search"),
    box, h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    close();
    onSearch(input.value.trim());
  });
  return [form, input];
}

async function results(q, box, signal) {
  box.replaceChildren(h("p.status", {}, "Searching…"));
  const get = (type) => api(`/v1/search?q=${encodeURIComponent(q)}&type=${type}&page_size=20`, { signal });
  try {
    const [users, tags, places, posts] = await Promise.all([get("USERS"), get("HASHTAGS"), get("PLACES"), get("POSTS")]);
    const section = (label, list) => list.length ? h("section", { "aria-label": label }, h("h2", {}, label), ...list) : null;
    const found = [
      section("People", [h("ul.people", {}, (users.users || []).map((u) => h("li.person", {}, userLink(u),
        u.display_name ? h("p.name", {}, u.display_name) : null)))].filter((ul) => ul.children.length)),
      section("Tags", [h("ul.chips", {}, (tags.hashtags || []).map((t) => h("li", {},
        h("a", { href: `#/tags/${encodeURIComponent(t.name)}` }, `#${t.name}`), h("span.meta", {}, ` ${count(t.post_count)}`))))]
        .filter((ul) => ul.children.length)),
      section("Places", [h("ul.chips", {}, (places.places || []).map((p) => h("li", {},
        h("a", { href: `#/places/${p.id}` }, p.name))))].filter((ul) => ul.children.length)),
      section("Posts", (posts.posts || []).length ? [h("div.grid", {}, posts.posts.map(postTile))] : []),
    ].filter(Boolean);
    box.replaceChildren(...(found.length ? found : [h("p.status", {}, `Nothing found for “${q}”.`)]));
  } catch (e) {
    if (e.name !== "AbortError") box.replaceChildren(h("p.error", { role: "alert" }, describe(e)));
  }
}

async function suggestions(box, signal) {
  try {
    const r = await api("/v1/users/me/suggestions?page_size=10", { signal });
    const list = r.suggestions || [];
    box.hidden = !list.length;
    box.append(h("ul.people", {}, list.map((s) => h("li.person", {}, userLink(s.user),
      h("p.name", {}, `Followed by ${counted(s.mutual_count, "person", "people")} you follow`)))));
  } catch (e) {
    if (e.name !== "AbortError") box.append(h("p.error", {}, describe(e)));
  }
}

export function searchScreen(main, { params, signal }) {
  const q = new URLSearchParams(params[0] || "").get("q") || "";
  const found = h("div.results", { "aria-live": "polite" });
  const [form, input] = searchBox((next) => {
    if (!next) return;
    history.replaceState(null, "", `#/search?q=${encodeURIComponent(next)}`);
    results(next, found, signal);
  }, q);
  const people = h("section.card", { "aria-labelledby": "suggested-title", hidden: true },
    h("h2", { id: "suggested-title" }, "Suggested for you"));
  main.append(h("section.card", { "aria-labelledby": "search-title" }, h("h1", { id: "search-title" }, "Search"), form, found),
    people,
    h("section.card", { "aria-labelledby": "explore-title" }, h("h2", { id: "explore-title" }, "Explore"),
      ...postGrid("/v1/explore", signal, "Nothing to explore yet.")));
  if (q) results(q, found, signal);
  suggestions(people, signal);
  input.focus();
}

export async function hashtagScreen(main, { params, signal }) {
  const name = params[0];
  let tag;
  try {
    tag = await api(`/v1/hashtags/${encodeURIComponent(name)}`, { signal });
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404 && e.status !== 400) throw e;
    main.append(h("section.card.empty", {}, h("h1", {}, `#${name}`), h("p", {}, `No posts tagged #${name} yet.`)));
    return;
  }
  const grid = h("div.tag-grid");
  const order = (value, label) => h("label", {}, h("input", { type: "radio", name: "order", value, checked: value === "TOP",
    onchange: () => grid.replaceChildren(...postGrid(`/v1/hashtags/${encodeURIComponent(tag.name)}/posts?order=${value}`,
      signal, "No posts.")) }), ` ${label}`);
  main.append(h("header.card.tag-head", {}, h("h1", {}, `#${tag.name}`), h("p.meta", {}, counted(tag.post_count, "post")),
    h("fieldset.mode", {}, h("legend.visually-hidden", {}, "Order"), order("TOP", "Top"), order("RECENT", "Recent"))), grid);
  grid.append(...postGrid(`/v1/hashtags/${encodeURIComponent(tag.name)}/posts?order=TOP`, signal, "No posts."));
}

export async function placeScreen(main, { params, signal }) {
  let place;
  try {
    place = await api(`/v1/places/${params[0]}`, { signal });
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404 && e.status !== 400) throw e;
    main.append(h("section.card.empty", {}, h("h1", {}, "Unknown place"), h("p", {}, "No posts were tagged here.")));
    return;
  }
  main.append(h("header.card.tag-head", {}, h("h1", {}, place.name),
    h("p.meta", {}, `${counted(place.post_count, "post")} · ${Number(place.lat).toFixed(3)}, ${Number(place.lng).toFixed(3)}`)),
  ...postGrid(`/v1/places/${place.id}/posts`, signal, "No posts."));
}
