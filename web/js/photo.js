// A photo: its blurhash at once, then the right size from the signed variants (srcset).
// Media URLs expire (PICTOR_MEDIA_URL_TTL, 4 minutes by default): an image or video that fails to
// load asks for its owning object again (post, story, message) and takes the fresh URLs.
import { api } from "./api.js";
import { decodeBlurhash, isBlurhash } from "./blurhash.js";
import { h } from "./dom.js";

const reading = new Map();

/** GET `path`, shared by every element of one object that fails at once (a carousel, a grid's tiles). */
export function readAgain(path) {
  let answer = reading.get(path);
  if (!answer) {
    answer = api(path);
    reading.set(path, answer);
    answer.catch(() => {}).finally(() => setTimeout(() => reading.delete(path), 2000));
  }
  return answer;
}

/**
 * `el` (an <img> or <video>) whose signed URLs may have expired before it loads: on a load error,
 * `renew()` reads the owning object again and returns the element's fresh attributes (null when
 * the media is gone or no longer visible), which replace the old ones. One renewal per failure:
 * a second error before a successful load is a real one and stays.
 */
export function renewing(el, renew) {
  let renewed = false;
  el.addEventListener(el.tagName === "VIDEO" ? "loadedmetadata" : "load", () => { renewed = false; });
  el.addEventListener("error", async () => {
    if (renewed) return;
    renewed = true;
    let attrs = null;
    try {
      attrs = await renew();
    } catch {
      return;
    }
    if (!attrs) return;
    const at = el.tagName === "VIDEO" ? el.currentTime : 0;
    for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, value);
    if (at) el.addEventListener("loadedmetadata", () => { el.currentTime = at; }, { once: true });
  });
  return el;
}

/** The fresh copy of media `mediaId` of post `postId` (null when the post is gone or hidden). */
export async function postMedia(postId, mediaId) {
  const post = await readAgain(`/v1/posts/${postId}`);
  return post.media.find((m) => m.id === mediaId) || null;
}

/** A variant's URL: `name` such as "150.webp" or "720.mp4". */
export const variant = (media, name) => media.url_template.replace("{variant}", name);

/** An <img> of one fixed variant (thumbnails, stories, messages) that renews through `fetchMedia()`. */
export function renewingImg(attrs, media, name, fetchMedia) {
  const img = h("img", { ...attrs, src: variant(media, name) });
  return fetchMedia ? renewing(img, async () => {
    const m = await fetchMedia();
    return m?.url_template ? { src: variant(m, name) } : null;
  }) : img;
}

const FEED_SIZES = [320, 640, 1080];

/** Each variant's width, from the media's size (its long edge) and the photo's proportions. */
export function srcset(media, sizes = FEED_SIZES) {
  const w = Number(media.width), ht = Number(media.height);
  const available = (media.sizes || []).map(Number).filter((s) => sizes.includes(s));
  return available
    .map((size) => {
      const scale = Math.min(1, size / Math.max(w, ht));
      return `${media.url_template.replace("{variant}", `${size}.webp`)} ${Math.round(w * scale)}w`;
    })
    .join(", ");
}

function placeholder(hash) {
  const canvas = h("canvas.placeholder", { width: 32, height: 32, "aria-hidden": "true" });
  if (isBlurhash(hash)) {
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(32, 32);
    image.data.set(decodeBlurhash(hash, 32, 32));
    ctx.putImageData(image, 0, 0);
  }
  return canvas;
}

const imageUrls = (media, square) => (square ? { src: variant(media, "150.webp") }
  : { srcset: srcset(media), src: variant(media, "640.webp") });
const videoUrls = (media) => ({ poster: variant(media, "640.jpg"), src: variant(media, "720.mp4") });

/**
 * `square`: the 150 px square thumbnail (profile grids, notifications). `postId`: the post it
 * belongs to, read again for fresh URLs when these have expired.
 */
export function photo(media, alt, { square = false, sizes = "(max-width: 640px) 100vw, 600px", timing, postId } = {}) {
  const frame = h(`div.photo${square ? ".square" : ""}`);
  if (!square) frame.style.aspectRatio = Number(media.width) && Number(media.height) ? `${media.width} / ${media.height}` : "1";
  frame.append(placeholder(media.placeholder));
  if (media.kind === "VIDEO" && media.state && media.state !== "READY") {
    // Only its author sees a post whose video is not ready: there are no files to load yet.
    frame.classList.add("pending", "loaded");
    const note = h("p.pending-note", { role: "img", "aria-label": alt || "video" },
      media.state === "FAILED" ? failedNote(media.failure_reason) : "Processing the video…");
    frame.append(note);
    if (media.state === "PROCESSING" && postId) {
      followTranscode(frame, note, media, (ready) => photo(ready, alt, { square, sizes, timing, postId }), postId);
    }
    return frame;
  }
  const video = !square && media.kind === "VIDEO";
  const urls = video ? videoUrls : (m) => imageUrls(m, square);
  const el = video ? withVideo(frame, media, alt)
    : h("img", { alt, sizes: square ? undefined : sizes, loading: "lazy", decoding: "async", ...urls(media) });
  if (postId) renewing(el, async () => { const m = await postMedia(postId, media.id); return m && urls(m); });
  if (video) return frame;
  if (timing) el.setAttribute("elementtiming", timing);
  el.addEventListener("load", () => frame.classList.add("loaded"));
  frame.append(el);
  return frame;
}

const failedNote = (reason) => `This video could not be processed: ${reason || "unknown reason"}`;

/**
 * A video still processing, on its author's screen, follows its transcode on the live stream: how
 * far it is, then the video itself (the post read again: its first read had no files) or why it
 * failed. When the stream (re)opens, the post is read again too: what ended while it was down
 * is not missed. Stops once the frame has left the page.
 */
function followTranscode(frame, note, media, redraw, postId) {
  const events = { "pictor:media_progress": onProgress, "pictor:media_processed": settle, "pictor:stream-ready": settle };
  let attached = false;
  const gone = () => {
    if (frame.isConnected) attached = true;
    else if (attached) stop();
    return !frame.isConnected && attached;
  };
  const stop = () => Object.entries(events).forEach(([type, fn]) => document.removeEventListener(type, fn));
  const ours = (e) => e.detail?.media_id !== undefined && String(e.detail.media_id) === String(media.id);

  function onProgress(e) {
    if (gone() || !ours(e)) return;
    note.textContent = `Processing the video… ${Number(e.detail.percent || 0)}%`;
  }
  async function settle(e) {
    if (gone() || (e.type === "pictor:media_processed" && !ours(e))) return;
    let now;
    try {
      now = (await api(`/v1/posts/${postId}`)).media.find((m) => m.id === media.id);
    } catch {
      return; // the next event, or the next opening of the stream, tries again
    }
    if (!now || now.state === "PROCESSING" || gone()) return;
    stop();
    if (now.state === "READY") {
      frame.replaceWith(redraw(now));
    } else {
      note.textContent = failedNote(now.failure_reason);
    }
  }
  Object.entries(events).forEach(([type, fn]) => document.addEventListener(type, fn));
}

/** A video (READY: posts show no other): the 720p MP4 with its poster frame; Chromium plays no HLS itself. */
function withVideo(frame, media, alt) {
  const video = h("video", { controls: true, playsinline: true, preload: "metadata", "aria-label": alt || "video",
                             ...videoUrls(media) });
  Object.assign(video.style, { position: "absolute", inset: "0", width: "100%", height: "100%", background: "#000" });
  frame.append(video);
  frame.classList.add("loaded");
  return video;
}

/** A post as a square tile of a grid (profiles, hashtags, places, explore), linking to the post. */
export function postTile(post) {
  const first = post.media[0];
  const who = post.author?.username;
  const alt = first.alt_text || `Post${who ? ` by ${who}` : ""}${post.caption ? `: ${post.caption.slice(0, 100)}` : ""}`;
  return h("a.tile", { href: `#/p/${post.id}` }, photo(first, alt, { square: true, postId: post.id }),
    post.media.length > 1 ? h("span.multi", { "aria-label": `${post.media.length} photos` }, "❏") : null);
}
