// Stories: the tray above the feed, the full-screen viewer (progress bars; tap, arrow keys or
// swipe to move; Escape to close), reactions and replies, my story's viewers, creating a story,
// and highlights (a row on profiles; one of my stories added to a new or existing highlight).
import { api, describe, me } from "../api.js";
import { ago, avatar, h, toast, userLink } from "../dom.js";
import { renewing, renewingImg, variant } from "../photo.js";
import { reportButton } from "../report.js";
import { uploadFile } from "../upload.js";

const STORY_MS = 5000;
const REACTIONS = ["❤️", "😂", "😮", "😢", "🔥", "👏"];

/** A story fills the screen: its photo's 9:16 rendition once media has made it (WebP), else the
 * largest variant the media has. */
function storySrc(media) {
  const fullScreen = (media.full_screen || []).find((v) => v.format === "webp");
  if (fullScreen) return fullScreen.url;
  const sizes = (media.sizes || []).map(Number);
  return variant(media, `${sizes.length ? Math.max(...sizes) : 640}.webp`);
}

function storyAlt(story) {
  const who = story.author?.display_name || story.author?.username || "someone";
  return story.media?.alt_text || `Story by ${who}`;
}

const reduceMotion = () => matchMedia("(prefers-reduced-motion: reduce)").matches;

/**
 * The full-screen viewer over `reels` (each `{user, mine, load: () => Promise<story[]>, views}`),
 * starting at reels[start]. After a reel's last story comes the next reel's first; after the last, it
 * closes. Auto-advance every 5 s, paused while a panel is open, the reply box has focus, the page is
 * hidden or the person pressed Pause; with reduced motion asked for, only the person moves it.
 */
export function openViewer(reels, start = 0, { onClose } = {}) {
  const opener = document.activeElement;
  let reelIndex = start;
  let stories = [];
  let index = 0;
  let elapsed = 0;
  let last = 0;
  let frame = 0;
  let userPaused = false;
  let loaded = false;
  let closed = false;
  // The views sent; the tray is read again once they are in (its rings say what I have seen).
  const views = [];

  const bars = h("div.bars", { "aria-hidden": "true" });
  const who = h("span.who");
  const when = h("time.meta");
  const pause = h("button.pause", { type: "button", "aria-pressed": "false" }, "Pause");
  const close = h("button.close", { type: "button", "aria-label": "Close stories" }, "✕");
  // Hidden until a story is shown: while the reel loads there is nothing to see (or to count as seen).
  const img = h("img.story-image", { alt: "", decoding: "async", hidden: true });
  const position = h("p.visually-hidden", { "aria-live": "polite" });
  const prevZone = h("button.zone.prev", { type: "button", "aria-label": "Previous story" });
  const nextZone = h("button.zone.next", { type: "button", "aria-label": "Next story" });
  const footer = h("div.story-footer");
  const panel = h("section.story-panel", { hidden: true });
  const viewer = h("div.viewer", { role: "dialog", "aria-modal": "true", "aria-label": "Stories", tabindex: "-1" },
    h("div.story-frame", {},
      bars,
      h("header.story-head", {}, h("span.avatar.small", { "aria-hidden": "true" }), who, when, h("span.spacer"), pause, close),
      h("div.stage", {}, img, prevZone, nextZone),
      position, footer, panel));

  // A sheet over the viewer (reporting the story) pauses it and takes the keys.
  const sheetOpen = () => Boolean(document.querySelector("dialog[open]"));
  const paused = () => userPaused || !loaded || !panel.hidden || document.hidden || sheetOpen()
    || footer.contains(document.activeElement) && document.activeElement.tagName === "INPUT";

  function tick(now) {
    if (closed) return;
    if (last && !paused() && !reduceMotion()) elapsed += now - last;
    last = now;
    const fill = bars.children[index]?.firstChild;
    if (fill) fill.style.width = `${Math.min(100, (100 * elapsed) / STORY_MS)}%`;
    if (elapsed >= STORY_MS) {
      next();
    }
    frame = requestAnimationFrame(tick);
  }

  async function openReel(i, at = 0) {
    reelIndex = i;
    const reel = reels[i];
    who.replaceChildren(userLink(reel.user));
    viewer.querySelector(".story-head .avatar").replaceWith(avatar(reel.user, "small"));
    viewer.setAttribute("aria-label", `${reel.title || `Stories of ${reel.user.username}`}`);
    try {
      stories = await reel.load();
    } catch (e) {
      toast(describe(e), "error");
      stories = [];
    }
    if (closed) return;
    if (!stories.length) {
      if (i + 1 < reels.length) return openReel(i + 1);
      return finish();
    }
    bars.replaceChildren(...stories.map(() => h("span.bar", {}, h("span.fill"))));
    show(at < 0 ? stories.length - 1 : Math.min(at, stories.length - 1));
  }

  function show(i) {
    index = i;
    elapsed = 0;
    loaded = false;
    closePanel();
    const story = stories[i];
    [...bars.children].forEach((bar, j) => { bar.firstChild.style.width = j < i ? "100%" : "0%"; });
    bars.children[i]?.classList.add("current");
    img.alt = storyAlt(story);
    img.src = storySrc(story.media);
    img.hidden = false;
    viewer.dataset.storyId = story.id;
    when.textContent = ago(story.created_at);
    when.setAttribute("datetime", story.created_at);
    position.textContent = `Story ${i + 1} of ${stories.length}`;
    prevZone.disabled = reelIndex === 0 && i === 0;
    footer.replaceChildren(...(reels[reelIndex].mine ? mineControls(story) : theirControls(story)));
    const reel = reels[reelIndex];
    if (!reel.mine && reel.views !== false && !story.seen_by_me) {
      story.seen_by_me = true;
      views.push(api(`/v1/stories/${story.id}:view`, { method: "POST", body: {} }).catch(() => { story.seen_by_me = false; }));
    }
  }

  img.addEventListener("load", () => { loaded = true; });
  img.addEventListener("error", () => { loaded = true; });
  // The viewer was left open past the URLs' life: the reel read again has the story's fresh URL.
  renewing(img, async () => {
    const story = stories[index];
    const again = (await reels[reelIndex].load()).find((s) => s.id === story.id);
    if (!again || stories[index] !== story) return null;
    story.media = again.media;
    loaded = false;
    return { src: storySrc(again.media) };
  });

  function next() {
    if (index + 1 < stories.length) show(index + 1);
    else if (reelIndex + 1 < reels.length) openReel(reelIndex + 1);
    else finish();
  }

  function prev() {
    if (index > 0) show(index - 1);
    else if (reelIndex > 0) openReel(reelIndex - 1, -1);
    else show(0);
  }

  function theirControls(story) {
    const report = reportButton("STORY", story.id, `Report story by ${story.author.username}`, "button.report");
    if (!story.allow_replies) return [h("p.meta", {}, "Replies to this story are off."), report];
    const input = h("input", { name: "text", required: true, maxlength: 1000, autocomplete: "off",
                               "aria-label": `Reply to ${story.author.username}`, placeholder: `Reply to ${story.author.username}…` });
    const form = h("form.reply", {}, input, h("button", { type: "submit" }, "Send"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      try {
        await api(`/v1/stories/${story.id}/replies`, { method: "POST", body: { text } });
        input.value = "";
        input.blur();
        toast("Reply sent");
      } catch (e) {
        toast(describe(e), "error");
      }
    });
    const react = (emoji) => h("button.react", { type: "button", "aria-label": `React ${emoji}`, onclick: async () => {
      try {
        await api(`/v1/stories/${story.id}/reactions`, { method: "POST", body: { emoji } });
        toast(`Sent ${emoji}`);
      } catch (e) {
        toast(describe(e), "error");
      }
    } }, emoji);
    return [h("div.reactions", { role: "group", "aria-label": "Reactions" }, REACTIONS.map(react)), form, report];
  }

  function mineControls(story) {
    const viewers = h("button", { type: "button", "aria-haspopup": "true" },
      `Viewers (${Number(story.view_count || 0)})`);
    viewers.addEventListener("click", () => openPanel(`Viewers of your story`, (body) => viewersList(story, body)));
    const highlight = h("button", { type: "button" }, "Add to highlight");
    highlight.addEventListener("click", () => openPanel("Add to highlight", (body) => highlightForm(story, body)));
    return [viewers, highlight];
  }

  function openPanel(title, fill) {
    const body = h("div.panel-body");
    const heading = h("h2", { id: "story-panel-title" }, title);
    panel.replaceChildren(h("div.panel-head", {}, heading,
      h("button", { type: "button", "aria-label": "Close panel", onclick: () => { closePanel(); viewer.focus(); } }, "✕")), body);
    panel.setAttribute("aria-labelledby", "story-panel-title");
    panel.hidden = false;
    fill(body);
  }

  function closePanel() {
    panel.hidden = true;
    panel.replaceChildren();
  }

  function finish() {
    if (closed) return;
    closed = true;
    cancelAnimationFrame(frame);
    document.removeEventListener("keydown", onKey, true);
    viewer.remove();
    document.body.classList.remove("viewing");
    if (opener?.isConnected) opener.focus();
    Promise.allSettled(views).then(() => onClose?.());
  }

  function onKey(event) {
    if (sheetOpen()) return;
    const typing = ["INPUT", "TEXTAREA"].includes(event.target.tagName);
    if (event.key === "Escape") {
      event.preventDefault();
      if (!panel.hidden) { closePanel(); viewer.focus(); } else finish();
    } else if (!typing && event.key === "ArrowRight") {
      event.preventDefault();
      next();
    } else if (!typing && event.key === "ArrowLeft") {
      event.preventDefault();
      prev();
    } else if (event.key === "Tab") {
      // Focus stays inside the dialog while it is open.
      const focusable = [...viewer.querySelectorAll("button:not(:disabled), input, a[href]")].filter((el) => el.offsetParent);
      if (!focusable.length) return;
      const first = focusable[0], lastOne = focusable[focusable.length - 1];
      if (event.shiftKey && (document.activeElement === first || document.activeElement === viewer)) {
        event.preventDefault();
        lastOne.focus();
      } else if (!event.shiftKey && document.activeElement === lastOne) {
        event.preventDefault();
        first.focus();
      }
    }
  }

  pause.addEventListener("click", () => {
    userPaused = !userPaused;
    pause.textContent = userPaused ? "Play" : "Pause";
    pause.setAttribute("aria-pressed", String(userPaused));
  });
  close.addEventListener("click", finish);
  prevZone.addEventListener("click", prev);
  nextZone.addEventListener("click", next);
  let touchX = null;
  viewer.addEventListener("touchstart", (e) => { touchX = e.touches[0].clientX; }, { passive: true });
  viewer.addEventListener("touchend", (e) => {
    const dx = e.changedTouches[0].clientX - (touchX ?? e.changedTouches[0].clientX);
    if (Math.abs(dx) > 60) (dx < 0 ? next : prev)();
    touchX = null;
  });
  document.addEventListener("keydown", onKey, true);
  addEventListener("hashchange", finish, { once: true });
  document.body.append(viewer);
  document.body.classList.add("viewing");
  viewer.focus();
  frame = requestAnimationFrame(tick);
  openReel(start);
  return { close: finish };
}

async function viewersList(story, body) {
  const list = h("ul.people.viewers");
  const status = h("p.status", {}, "Loading…");
  body.append(status, list);
  try {
    const r = await api(`/v1/stories/${story.id}/viewers?page_size=200`);
    status.textContent = `${Number(r.view_count || 0)} ${Number(r.view_count) === 1 ? "viewer" : "viewers"}`;
    list.replaceChildren(...(r.viewers || []).map((v) => h("li.person", {},
      avatar(v.user, "small"),
      h("div", {}, userLink(v.user), h("p.name", {}, ago(v.viewed_at))),
      v.reaction ? h("span.reaction", { "aria-label": `reacted ${v.reaction}` }, v.reaction) : null)));
  } catch (e) {
    status.replaceChildren(h("span.error", { role: "alert" }, describe(e)));
  }
}

async function highlightForm(story, body) {
  const title = h("input", { id: "highlight-title", name: "title", required: true, maxlength: 50 });
  const error = h("p.error", { role: "alert" });
  const form = h("form.highlight-new", {}, h("label", { for: "highlight-title" }, "New highlight"), title,
    h("button.primary", { type: "submit" }, "Create"), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("/v1/highlights", { method: "POST", body: { title: title.value.trim(), story_ids: [story.id] } });
      toast(`Added to “${title.value.trim()}”`);
      body.replaceChildren(h("p", {}, `Added to “${title.value.trim()}”.`));
    } catch (e) {
      error.textContent = describe(e);
    }
  });
  const existing = h("ul.existing");
  body.append(existing, form);
  title.focus();
  try {
    const r = await api(`/v1/users/${me().id}/highlights`);
    existing.replaceChildren(...(r.highlights || []).map((hl) => h("li", {}, h("button", { type: "button", onclick: async () => {
      try {
        await api(`/v1/highlights/${hl.id}`, { method: "PATCH", body: { add_story_ids: [story.id] } });
        toast(`Added to “${hl.title}”`);
      } catch (e) {
        error.textContent = describe(e);
      }
    } }, `Add to “${hl.title}”`))));
  } catch (e) {
    error.textContent = describe(e);
  }
}

function userReel(user, mine) {
  return { user, mine, load: async () => (await api(`/v1/users/${user.id}/stories`)).stories || [] };
}

/** The tray above the home feed: my story first (or a way to add one), then the accounts I follow. */
export function storyTray(signal) {
  const list = h("ul.tray-list");
  const section = h("section.tray", { "aria-label": "Stories" }, list);
  const load = async () => {
    let entries;
    try {
      entries = (await api("/v1/stories/tray", { signal })).entries || [];
    } catch (e) {
      if (e.name !== "AbortError") list.replaceChildren(h("li.error", { role: "alert" }, `Stories: ${describe(e)}`));
      return;
    }
    const mine = entries[0]?.user.id === me().id ? entries.shift() : null;
    const reels = entries.map((e) => userReel(e.user, false));
    const add = h("a.tray-add", { href: "#/stories/new", "aria-label": "Add to your story" }, "+");
    const own = mine
      ? h("button.ring.seen", { type: "button", "aria-label": "Your story",
                                onclick: () => openViewer([userReel(mine.user, true)], 0, { onClose: load }) },
        avatar(mine.user))
      : h("a.ring.none", { href: "#/stories/new", "aria-label": "Your story: add one" },
        avatar(me()));
    list.replaceChildren(
      h("li", {}, own, add, h("span.tray-name", { "aria-hidden": "true" }, "Your story")),
      ...entries.map((entry, i) => h("li", {},
        h(`button.ring.${entry.has_unseen ? "unseen" : "seen"}`, {
          type: "button", "aria-label": `Story of ${entry.user.username}${entry.has_unseen ? ", new" : ""}`,
          onclick: () => openViewer(reels, i, { onClose: load }) },
        avatar(entry.user)),
        h("span.tray-name", { "aria-hidden": "true" }, entry.user.username))));
  };
  load();
  return section;
}

/** A profile's highlights, as a row of covers; each opens the viewer on its stories. */
export function highlightsRow(user, signal) {
  const list = h("ul.highlights");
  const section = h("section.highlight-row", { "aria-label": "Highlights", hidden: true }, list);
  api(`/v1/users/${user.id}/highlights`, { signal }).then((r) => {
    const highlights = r.highlights || [];
    section.hidden = !highlights.length;
    list.replaceChildren(...highlights.map((hl) => {
      const cover = hl.cover?.media;
      const reel = { user, mine: false, views: false, title: `Highlight ${hl.title}`,
                     load: async () => (await api(`/v1/highlights/${hl.id}`)).stories || [] };
      return h("li", {}, h("button.highlight", { type: "button", "aria-label": `Highlight ${hl.title}`,
                                                 onclick: () => openViewer([reel], 0) },
        cover ? renewingImg({ alt: "", loading: "lazy" }, cover, "150.webp",
          async () => (await api(`/v1/users/${user.id}/highlights`)).highlights?.find((x) => x.id === hl.id)?.cover?.media)
          : h("span.avatar", { "aria-hidden": "true" }, hl.title[0] || "★"),
        h("span", {}, hl.title)));
    }));
  }).catch((e) => {
    if (e.name === "AbortError") return;
    section.hidden = false;
    list.replaceChildren(h("li.error", {}, describe(e)));
  });
  return section;
}

/** #/stories/new: one photo, who may see it, whether replies are on. */
export function newStoryScreen(main) {
  const picker = h("input", { type: "file", id: "story-photo", accept: "image/*" });
  const preview = h("img.story-preview", { alt: "", hidden: true });
  const bar = h("progress", { max: 100, value: 0, hidden: true, "aria-label": "Upload" });
  const error = h("p.error", { role: "alert" });
  const share = h("button.primary", { type: "submit", disabled: true }, "Share to your story");
  let file = null;
  picker.addEventListener("change", () => {
    error.textContent = "";
    file = picker.files[0] || null;
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = !file;
    if (file) {
      preview.src = URL.createObjectURL(file);
      preview.alt = `Your story photo: ${file.name}`;
    }
    share.disabled = !file;
  });
  const form = h("form.card.composer", { "aria-labelledby": "story-title" },
    h("h1", { id: "story-title" }, "New story"),
    h("p.field", {}, picker, h("label.button", { for: "story-photo" }, "Choose a photo")),
    preview, bar,
    h("fieldset", {}, h("legend", {}, "Who sees it"),
      h("p.check", {}, h("input", { type: "radio", id: "aud-everyone", name: "audience", value: "EVERYONE", checked: true }),
        h("label", { for: "aud-everyone" }, "Everyone who may see my posts")),
      h("p.check", {}, h("input", { type: "radio", id: "aud-close", name: "audience", value: "CLOSE_FRIENDS" }),
        h("label", { for: "aud-close" }, "Close friends only"))),
    h("p.check", {}, h("input", { type: "checkbox", id: "allow-replies", name: "allow_replies", checked: true }),
      h("label", { for: "allow-replies" }, "Allow reactions and replies")),
    error, share);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!file) return;
    error.textContent = "";
    share.disabled = true;
    bar.hidden = false;
    try {
      const media = await uploadFile(file, (sent, total) => { bar.value = Math.round((100 * sent) / Math.max(1, total)); });
      await api("/v1/stories", { method: "POST", body: {
        media_id: media.id, audience: form.elements.audience.value, allow_replies: form.elements.allow_replies.checked } });
      toast("Added to your story");
      location.hash = "#/";
    } catch (e) {
      error.textContent = `${file.name}: ${describe(e)}`;
      share.disabled = false;
    }
  });
  main.append(form);
}
