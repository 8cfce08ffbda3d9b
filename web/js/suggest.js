// A suggestion list under a text field (the ARIA combobox pattern): search's autocomplete and the #
// and @ suggestions in captions and comments. The list follows the text after a pause; arrow keys
// move the active option, Enter takes it, Escape closes; a click takes one too.
import { h } from "./dom.js";

/**
 * Gives `field` (an input or a textarea) a list of suggestions; returns `{box, close}`: the field
 * and its list in one box (the list is placed under the field), and what closes the list.
 *
 * - id, label: the listbox's id and accessible name; `optionId` the prefix of its options' ids.
 * - debounce: ms of quiet typing before `load(signal)` asks for the items for the field's text
 *   (resolving to [] when there is nothing to look up; it is aborted when the text changes again).
 * - render(item): the option's content; take(item): what choosing it does (the list closes after).
 * - selectFirst: the first option is active as the list opens, so Enter takes it.
 * - tab: Tab takes the active option too.
 * - reopen: a closed list keeps its items and an arrow key opens it again (in a one-line box
 *   only: in a textarea the arrows move the caret once the list is closed).
 */
export function suggest(field, { id, label, optionId = `${id}-`, debounce, load, render, take,
                                 selectFirst = false, tab = false, reopen = false }) {
  const listbox = h("ul.suggestions", { id, role: "listbox", "aria-label": label, hidden: true });
  field.setAttribute("aria-autocomplete", "list");
  field.setAttribute("aria-controls", id);
  field.setAttribute("aria-expanded", "false");
  let items = [];
  let active = -1;
  let timer = 0;
  let inflight = null;

  const setActive = (i) => {
    active = i;
    [...listbox.children].forEach((li, j) => li.setAttribute("aria-selected", String(i === j)));
    if (i >= 0) field.setAttribute("aria-activedescendant", `${optionId}${i}`);
    else field.removeAttribute("aria-activedescendant");
  };
  // Closing also drops a pause or a request under way: no list opens later under a field left behind.
  const close = () => {
    clearTimeout(timer);
    inflight?.abort();
    if (!reopen) items = [];
    listbox.hidden = true;
    listbox.replaceChildren();
    field.setAttribute("aria-expanded", "false");
    setActive(-1);
  };
  const choose = (item) => {
    take(item);
    close();
  };
  const show = (list) => {
    items = list;
    listbox.replaceChildren(...items.map((item, i) => h("li", {
      id: `${optionId}${i}`, role: "option", "aria-selected": "false",
      onmousedown: (e) => e.preventDefault(), onclick: () => choose(item) }, // the field keeps its focus
    render(item))));
    listbox.hidden = !items.length;
    field.setAttribute("aria-expanded", String(items.length > 0));
    setActive(items.length && selectFirst ? 0 : -1);
  };
  const fetchItems = async () => {
    const request = (inflight = new AbortController());
    try {
      const found = await load(request.signal);
      if (!request.signal.aborted) show(found);
    } catch (e) {
      if (e.name !== "AbortError") show([]); // suggestions are a help: typing goes on without them
    }
  };
  field.addEventListener("input", () => {
    clearTimeout(timer);
    inflight?.abort(); // its answer is for the text as it was: never shown
    timer = setTimeout(fetchItems, debounce);
  });
  field.addEventListener("keydown", (e) => {
    const arrow = e.key === "ArrowDown" || e.key === "ArrowUp";
    if (!items.length || (listbox.hidden && !(reopen && arrow))) return;
    if (arrow) {
      e.preventDefault();
      if (listbox.hidden) show(items);
      setActive(e.key === "ArrowDown" ? (active + 1) % items.length : (active <= 0 ? items.length - 1 : active - 1));
    } else if ((e.key === "Enter" || (tab && e.key === "Tab")) && active >= 0) {
      e.preventDefault();
      choose(items[active]);
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation(); // the list, not the sheet or dialog around it
      close();
    }
  });
  field.addEventListener("blur", close);
  return { box: h("div.combo", {}, field, listbox), close };
}
