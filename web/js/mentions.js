// # and @ autocomplete in a text field (a caption, a comment): while the word before the caret is
// "#ta" or "@ad", a list of hashtags or accounts (GET /v1/search:autocomplete?q=#ta or @ad) opens
// under the field; arrow keys move, Enter or Tab takes one, Escape closes. Taking one writes
// "#name " or "@username " in place of the word.
import { api } from "./api.js";
import { counted, h } from "./dom.js";
import { suggest } from "./suggest.js";

const DEBOUNCE_MS = 150;
// The word being typed, right before the caret: a sigil at the start or after a space, then 1-30
// letters, digits, _ or . (what a username or a hashtag is made of).
const TYPED = /(?:^|\s)([#@])([\p{L}\p{N}_.]{1,30})$/u;

let lists = 0;

/** Wraps `field` (a textarea or an input) in a box with its suggestion list; returns the box. */
export function withMentions(field) {
  let typed = null; // {sigil, word, start}: the word the list is for
  const { box } = suggest(field, {
    id: `mentions-${++lists}`, label: "Tags and accounts", debounce: DEBOUNCE_MS,
    // The list completes a word in running text: Enter or Tab takes the first, the arrows are the
    // textarea's again once it is closed.
    selectFirst: true, tab: true,
    load: async (signal) => {
      const m = TYPED.exec(field.value.slice(0, field.selectionStart));
      if (!m) return [];
      const word = { sigil: m[1], word: m[2], start: field.selectionStart - m[2].length - 1 };
      const r = await api(`/v1/search:autocomplete?q=${encodeURIComponent(word.sigil + word.word)}`, { signal });
      typed = word;
      return (r.suggestions || []).filter((s) => (word.sigil === "@" ? s.user : s.hashtag));
    },
    render: (s) => (s.user
      ? [h("strong", {}, `@${s.user.username}`), s.user.display_name ? h("span.meta", {}, ` ${s.user.display_name}`) : null]
      : [h("strong", {}, `#${s.hashtag.name}`), h("span.meta", {}, ` ${counted(s.hashtag.post_count, "post")}`)]),
    take: (s) => {
      const end = typed.start + 1 + typed.word.length;
      field.setRangeText(`${typed.sigil}${s.user ? s.user.username : s.hashtag.name} `, typed.start, end, "end");
      field.dispatchEvent(new Event("input", { bubbles: true }));
      field.focus();
    },
  });
  return box;
}
