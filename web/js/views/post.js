// A post as a card: carousel, like (button or double tap) with an optimistic count, save, comments
// with replies. Used by the feed and by a post's own page (#/p/<id>).
import { api, describe, me } from "../api.js";
import { ago, avatar, count, h, toast, userLink } from "../dom.js";
import { icon } from "../icons.js";
import { withMentions } from "../mentions.js";
import { photo } from "../photo.js";
import { reportButton } from "../report.js";
import { sharePost } from "./messages.js";

function altText(post, i) {
  if (post.media[i].alt_text) return post.media[i].alt_text;
  const n = post.media.length;
  const who = post.author.display_name || post.author.username;
  const caption = post.caption ? `: ${post.caption.slice(0, 120)}` : "";
  return `Photo${n > 1 ? ` ${i + 1} of ${n}` : ""} by ${who}${caption}`;
}

function carousel(post, options) {
  const slides = h("ul.slides", { tabindex: "0", "aria-label": `Photos of the post by ${post.author.username}` });
  post.media.forEach((m, i) => slides.append(h("li", {}, photo(m, altText(post, i), { postId: post.id,
    timing: options.first && i === 0 ? "feed-first-image" : undefined }))));
  const box = h("div.carousel", {}, slides);
  if (post.media.length > 1) {
    const dots = h("div.dots", { "aria-hidden": "true" }, post.media.map(() => h("span")));
    const status = h("span.visually-hidden", { "aria-live": "polite" });
    const go = (d) => slides.scrollBy({ left: d * slides.clientWidth, behavior: "smooth" });
    const prev = h("button.nav-prev", { type: "button", "aria-label": "Previous photo", onclick: () => go(-1) }, "‹");
    const next = h("button.nav-next", { type: "button", "aria-label": "Next photo", onclick: () => go(1) }, "›");
    const update = () => {
      const i = Math.round(slides.scrollLeft / Math.max(1, slides.clientWidth));
      [...dots.children].forEach((d, j) => d.classList.toggle("on", i === j));
      prev.disabled = i === 0;
      next.disabled = i === post.media.length - 1;
      status.textContent = `Photo ${i + 1} of ${post.media.length}`;
    };
    slides.addEventListener("scroll", () => requestAnimationFrame(update), { passive: true });
    slides.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight") go(1);
      if (e.key === "ArrowLeft") go(-1);
    });
    box.append(prev, next, dots, status);
    requestAnimationFrame(update);
  }
  return box;
}

function comment(post, c, onReply) {
  const item = h("li.comment", { dataset: { id: c.id } },
    h("p", {}, userLink(c.author), " ", c.text),
    h("p.meta", {}, h("time", { datetime: c.created_at }, ago(c.created_at)), " ",
      h("button.link", { type: "button", onclick: () => onReply(c) }, "Reply"),
      c.author.id === me()?.id ? null : [" ", reportButton("COMMENT", c.id, `Report comment by ${c.author.username}`)]));
  if (Number(c.reply_count) > 0) {
    const replies = h("ul.replies");
    const more = h("button.link", { type: "button" }, `View replies (${c.reply_count})`);
    more.addEventListener("click", async () => {
      more.disabled = true;
      try {
        const r = await api(`/v1/comments/${c.id}/replies?page_size=50`);
        replies.replaceChildren(...r.comments.map((x) => comment(post, { ...x, reply_count: 0 }, () => onReply(c))));
        more.remove();
      } catch (e) {
        more.disabled = false;
        toast(describe(e), "error");
      }
    });
    item.append(more, replies);
  }
  return item;
}

function comments(post, counter) {
  const list = h("ul.comments");
  const input = h("input", { name: "text", required: true, maxlength: 2200, autocomplete: "off",
                             placeholder: "Add a comment…", "aria-label": "Comment" });
  const replying = h("p.replying", { hidden: true });
  let parent = null;
  const setParent = (c) => {
    parent = c;
    replying.hidden = !c;
    replying.replaceChildren(...(c ? [`Replying to ${c.author.username} `,
      h("button.link", { type: "button", onclick: () => setParent(null) }, "Cancel")] : []));
    input.focus();
  };
  const form = h("form.comment-form", {}, replying, withMentions(input), h("button", { type: "submit" }, "Post"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    try {
      const body = { text, ...(parent ? { parent_comment_id: parent.id } : {}) };
      const c = await api(`/v1/posts/${post.id}/comments`, { method: "POST", body });
      const target = parent ? list.querySelector(`[data-id="${parent.id}"]`) : null;
      const replies = target?.querySelector(".replies") || target?.appendChild(h("ul.replies"));
      (replies || list).append(comment(post, { ...c, reply_count: 0 }, setParent));
      if (!parent) counter(1);
      input.value = "";
      setParent(null);
    } catch (e) {
      toast(describe(e), "error");
    }
  });
  const section = h("section.comment-panel", { "aria-label": "Comments" }, list, form);
  api(`/v1/posts/${post.id}/comments?order=OLDEST&page_size=50`)
    .then((r) => list.replaceChildren(...r.comments.map((c) => comment(post, c, setParent))))
    .catch((e) => list.replaceChildren(h("li.error", {}, describe(e))));
  return section;
}

export function postCard(post, options = {}) {
  let liked = Boolean(post.liked_by_me);
  let likes = Number(post.like_count || 0);
  let saved = Boolean(post.saved_by_me);
  let commentCount = Number(post.comment_count || 0);
  const likeButton = h("button.icon.like", { type: "button", "aria-pressed": String(liked), "aria-label": "Like" }, icon("heart"));
  const saveButton = h("button.icon.save", { type: "button", "aria-pressed": String(saved), "aria-label": "Save" }, icon("bookmark"));
  const commentButton = h("button.icon", { type: "button", "aria-label": "Comments", "aria-expanded": "false" }, icon("comment"));
  const shareButton = h("button.icon.share", { type: "button", "aria-label": "Share", "aria-haspopup": "dialog",
                                               onclick: () => sharePost(post) }, icon("send"));
  const likeLine = h("p.likes");
  const commentLine = h("button.link.comment-count", { type: "button" });
  const render = () => {
    likeButton.setAttribute("aria-pressed", String(liked));
    saveButton.setAttribute("aria-pressed", String(saved));
    likeLine.replaceChildren(h("span.like-count", {}, count(likes)), likes === 1 ? " like" : " likes");
    commentLine.textContent = commentCount ? `View comments (${commentCount})` : "Comment";
  };

  let pending = Promise.resolve();
  // Optimistic: the count moves now; the request follows (in order), and a failure puts it back.
  const setLiked = (want) => {
    if (want === liked) return;
    liked = want;
    likes += want ? 1 : -1;
    render();
    pending = pending.then(() => api(`/v1/posts/${post.id}/like`, { method: want ? "POST" : "DELETE" })).catch((e) => {
      liked = !want;
      likes += want ? -1 : 1;
      render();
      toast(describe(e), "error");
    });
  };
  likeButton.addEventListener("click", () => setLiked(!liked));
  saveButton.addEventListener("click", async () => {
    saved = !saved;
    render();
    try {
      await api(`/v1/posts/${post.id}/save`, { method: saved ? "POST" : "DELETE" });
      toast(saved ? "Saved" : "Removed from saved");
    } catch (e) {
      saved = !saved;
      render();
      toast(describe(e), "error");
    }
  });

  const media = carousel(post, options);
  const heart = h("span.burst", { "aria-hidden": "true" }, "♥");
  media.append(heart);
  media.addEventListener("dblclick", (event) => {
    if (event.target.closest("button")) return;
    setLiked(true);
    heart.classList.remove("go");
    void heart.offsetWidth;
    heart.classList.add("go");
  });

  let panel = null;
  const toggleComments = () => {
    if (!panel) {
      panel = comments(post, (d) => { commentCount += d; render(); });
      card.append(panel);
    } else {
      panel.hidden = !panel.hidden;
    }
    commentButton.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) panel.querySelector("input").focus();
  };
  commentButton.addEventListener("click", toggleComments);
  commentLine.addEventListener("click", toggleComments);

  const card = h("article.post", { "aria-label": `Post by ${post.author.username}`, dataset: { id: post.id } },
    h("header", {}, avatar(post.author, "tiny"), userLink(post.author), post.location?.name ? h("span.place", {}, post.location.name) : null,
      post.author.id === me()?.id ? null
        : [h("span.spacer"), reportButton("POST", post.id, `Report post by ${post.author.username}`)]),
    media,
    h("div.actions", {}, likeButton, commentButton, shareButton, h("span.spacer"), saveButton),
    likeLine,
    post.caption ? h("p.caption", {}, userLink(post.author), " ", post.caption) : null,
    commentLine,
    h("p.meta", {}, h("a", { href: `#/p/${post.id}` }, h("time", { datetime: post.created_at }, ago(post.created_at)))));
  render();
  if (options.openComments) toggleComments();
  return card;
}

export async function postScreen(main, { params, signal }) {
  const post = await api(`/v1/posts/${params[0]}`, { signal });
  main.append(h("h1.visually-hidden", {}, `Post by ${post.author.username}`), postCard(post, { openComments: true }));
}
