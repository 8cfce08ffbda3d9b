// # and @ autocomplete in a text field (a caption, a comment): while the word before the caret is
// "#ta" or "@ad", a list of hashtags or accounts (GET /v1/search:autocomplete?q=#ta or @ad) opens
// under the field; arrow keys move, Enter or Tab takes one, Escape closes. Taking one writes
// "#name " or "@username " in place of the word.
import { api } from "./api.js";
import { counted, h } from "./dom.js";

const DEBOUNCE_MS = 150;
// The word being typed, right before the caret: a sigil at the start or after a space, then 1-30
// letters, digits, _ or . (what a username or a hashtag is made of).
const TYPED = /(?:^|\s)([#@])([\p{L}\p{N}_.]{1,30})$/u;

let lists = 0;

/** Wraps `field` (a textarea or an input) in a box with its suggestion list; returns the box. */
export function withMentions(field) {
  const id = `mentions-${++lists}`;
  const listbox = h("ul.suggestions", { id, role: "listbox", "aria-label": "Tags and accounts", hidden: true });
  field.setAttribute("aria-autocomplete", "list");
  field.setAttribute("aria-controls", id);
  field.setAttribute("aria-expanded", "false");
  let items = [];
  let active = -1;
  let typed = null; // {sigil, word, start}: the word the list is for
  let timer = 0;
  let inflight = null;

  const setActive = (i) => {
    active = i;
    [...listbox.children].forEach((li, j) => li.setAttribute("aria-selected", String(i === j)));
    if (i >= 0) field.setAttribute("aria-activedescendant", `${id}-${i}`);
    else field.removeAttribute("aria-activedescendant");
  };
  const close = () => {
    items = [];
    listbox.hidden = true;
    listbox.replaceChildren();
    field.setAttribute("aria-expanded", "false");
    setActive(-1);
  };
  const name = (s) => (s.user ? s.user.username : s.hashtag.name);
  const take = (s) => {
    const text = `${typed.sigil}${name(s)} `;
    const end = typed.start + 1 + typed.word.length;
    field.setRangeText(text, typed.start, end, "end");
    field.dispatchEvent(new Event("input", { bubbles: true }));
    close();
    field.focus();
  };
  const render = () => {
    listbox.replaceChildren(...items.map((s, i) => h("li", {
      id: `${id}-${i}`, role: "option", "aria-selected": "false",
      onmousedown: (e) => e.preventDefault(), onclick: () => take(s) },
    s.user
      ? [h("strong", {}, `@${s.user.username}`), s.user.display_name ? h("span.meta", {}, ` ${s.user.display_name}`) : null]
      : [h("strong", {}, `#${s.hashtag.name}`), h("span.meta", {}, ` ${counted(s.hashtag.post_count, "post")}`)])));
    listbox.hidden = !items.length;
    field.setAttribute("aria-expanded", String(items.length > 0));
    setActive(items.length ? 0 : -1);
  };
  const suggest = async () => {
    inflight?.abort();
    const m = TYPED.exec(field.value.slice(0, field.selectionStart));
    if (!m) { typed = null; close(); return; }
    const word = { sigil: m[1], word: m[2], start: field.selectionStart - m[2].length - 1 };
    inflight = new AbortController();
    try {
      const r = await api(`/v1/search:autocomplete?q=${encodeURIComponent(word.sigil + word.word)}`, { signal: inflight.signal });
      typed = word;
      items = (r.suggestions || []).filter((s) => (word.sigil === "@" ? s.user : s.hashtag));
      render();
    } catch (e) {
      if (e.name !== "AbortError") close(); // suggestions are a help: typing goes on without them
    }
  };
  field.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, DEBOUNCE_MS);
  });
  field.addEventListener("keydown", (e) => {
    if (listbox.hidden || !items.length) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      setActive(e.key === "ArrowDown" ? (active + 1) % items.length : (active <= 0 ? items.length - 1 : active - 1));
    } else if ((e.key === "Enter" || e.key === "Tab") && active >= 0) {
      e.preventDefault();
      take(items[active]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      close();
    }
  });
  field.addEventListener("blur", close);
  return h("div.combo", {}, field, listbox);
}
