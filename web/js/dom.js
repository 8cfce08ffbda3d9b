// Small helpers to build the DOM without innerHTML for anything a user wrote.

/** h("button.primary", {type: "submit", onclick}, "Save") */
export function h(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const el = document.createElement(tag || "div");
  if (classes.length) el.className = classes.join(" ");
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name in el && typeof value !== "string") el[name] = value;
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function toast(text, kind = "info") {
  const box = document.querySelector(".toasts");
  const item = h(`div.toast.${kind}`, {}, text);
  box.append(item);
  setTimeout(() => item.remove(), 5000);
}

export function count(n) {
  const v = Number(n || 0);
  return v >= 1e6 ? `${(v / 1e6).toFixed(1)}M` : v >= 1e4 ? `${Math.round(v / 1e3)}K` : v.toLocaleString("en");
}

/** "1 post", "12 posts", "1.2M posts": a count and its noun (`plural`: when not noun + "s"). */
export function counted(n, noun, plural = `${noun}s`) {
  return `${count(n)} ${Number(n) === 1 ? noun : plural}`;
}

/** The first letter of someone's name, for an avatar without a picture. */
export function initial(user) {
  return (user?.display_name || user?.username || "?")[0].toUpperCase();
}

/** Someone's avatar: their picture (avatar_url) or the first letter of their name; `kind` "small"
 * for lists. Decorative (the name is always beside it). */
export function avatar(user, kind = "") {
  const el = h(`span.avatar${kind ? `.${kind}` : ""}`, { "aria-hidden": "true" });
  if (user?.avatar_url) el.append(h("img", { src: user.avatar_url, alt: "", loading: "lazy", decoding: "async" }));
  else el.textContent = initial(user);
  return el;
}

export function ago(iso) {
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h`;
  return new Date(iso).toLocaleDateString("en", { day: "numeric", month: "short" });
}

export function userLink(user) {
  return h("a.user", { href: `#/u/${encodeURIComponent(user.username)}` }, user.username);
}

/** Runs `load` whenever `sentinel` scrolls into view, until it returns false. */
export function onReachEnd(sentinel, load) {
  let busy = false;
  const observer = new IntersectionObserver(async (entries) => {
    if (!entries.some((e) => e.isIntersecting) || busy) return;
    busy = true;
    const more = await load();
    busy = false;
    if (more === false) observer.disconnect();
    else if (sentinel.isConnected && sentinel.getBoundingClientRect().top < innerHeight) {
      observer.unobserve(sentinel);
      observer.observe(sentinel);
    }
  }, { rootMargin: "600px" });
  observer.observe(sentinel);
  return observer;
}
