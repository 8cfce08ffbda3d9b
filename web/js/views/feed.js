// The home feed: ranked or chronological (the feed API's two modes), infinite scroll on page tokens.
import { api, describe } from "../api.js";
import { h, onReachEnd } from "../dom.js";
import { postCard } from "./post.js";
import { storyTray } from "./stories.js";

const MODE_KEY = "pictor.feed-mode";

export async function feedScreen(main, { signal }) {
  let mode = localStorage.getItem(MODE_KEY) || "RANKED";
  const list = h("div.feed", { "aria-live": "polite" });
  const sentinel = h("div.sentinel", { "aria-hidden": "true" });
  const status = h("p.status");
  const choose = (value) => h("label", {}, h("input", { type: "radio", name: "mode", value, checked: mode === value,
    onchange: () => { localStorage.setItem(MODE_KEY, value); start(value); } }),
    value === "RANKED" ? " For you" : " Latest");
  main.append(
    storyTray(signal),
    h("header.screen-head", {}, h("h1", {}, "Home"),
      h("fieldset.mode", {}, h("legend.visually-hidden", {}, "Order of the feed"), choose("RANKED"),
        choose("CHRONOLOGICAL"))),
    list, status, sentinel);

  let token = "";
  let generation = 0;
  let observer = null;
  let first = true;

  async function page(gen) {
    const query = new URLSearchParams({ page_size: "10", mode });
    if (token) query.set("page_token", token);
    try {
      const r = await api(`/v1/feed?${query}`, { signal });
      if (gen !== generation) return false;
      for (const post of r.posts) {
        list.append(postCard(post, { first }));
        first = false;
      }
      if (!list.children.length) {
        status.replaceChildren("Nothing here yet. Follow people (", h("a", { href: "#/notifications" }, "or wait for them"),
          ") or ", h("a", { href: "#/new" }, "share a photo"), ".");
      }
      if (gen === generation && r.posts.length && !performance.getEntriesByName("pictor:feed-first-page").length) {
        // After the next frame is painted: what the benchmark (python -m tests.browser.bench) reads.
        requestAnimationFrame(() => setTimeout(() => performance.mark("pictor:feed-first-page"), 0));
      }
      token = r.next_page_token;
      if (!token && list.children.length) status.textContent = "You're all caught up.";
      return Boolean(token);
    } catch (e) {
      if (e.name === "AbortError") return false;
      status.replaceChildren(h("span.error", { role: "alert" }, describe(e)), " ",
        h("button", { type: "button", onclick: () => start(mode) }, "Try again"));
      return false;
    }
  }

  function start(next) {
    mode = next;
    generation += 1;
    token = "";
    first = true;
    list.replaceChildren();
    status.textContent = "";
    observer?.disconnect();
    const gen = generation;
    observer = onReachEnd(sentinel, () => page(gen));
  }
  signal.addEventListener("abort", () => observer?.disconnect());
  start(mode);
}
