// A photo: its blurhash at once, then the right size from the signed variants (srcset).
import { decodeBlurhash, isBlurhash } from "./blurhash.js";
import { h } from "./dom.js";

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

/** `square`: the 150 px square thumbnail (profile grids, notifications). */
export function photo(media, alt, { square = false, sizes = "(max-width: 640px) 100vw, 600px", timing } = {}) {
  const frame = h(`div.photo${square ? ".square" : ""}`);
  if (!square) frame.style.aspectRatio = `${media.width} / ${media.height}`;
  frame.append(placeholder(media.placeholder));
  if (!square && media.kind === "VIDEO") return withVideo(frame, media, alt);
  const img = square
    ? h("img", { alt, src: media.url_template.replace("{variant}", "150.webp"), loading: "lazy", decoding: "async" })
    : h("img", { alt, srcset: srcset(media), sizes, loading: "lazy", decoding: "async",
                 src: media.url_template.replace("{variant}", "640.webp") });
  if (timing) img.setAttribute("elementtiming", timing);
  img.addEventListener("load", () => frame.classList.add("loaded"));
  frame.append(img);
  return frame;
}

/** A video (READY: posts show no other): the 720p MP4 with its poster frame; Chromium plays no HLS itself. */
function withVideo(frame, media, alt) {
  const file = (name) => media.url_template.replace("{variant}", name);
  const video = h("video", { controls: true, playsinline: true, preload: "metadata", "aria-label": alt || "video",
                             poster: file("640.jpg"), src: file("720.mp4") });
  Object.assign(video.style, { position: "absolute", inset: "0", width: "100%", height: "100%", background: "#000" });
  frame.append(video);
  frame.classList.add("loaded");
  return frame;
}

/** A post as a square tile of a grid (profiles, hashtags, places, explore), linking to the post. */
export function postTile(post) {
  const first = post.media[0];
  const who = post.author?.username;
  const alt = first.alt_text || `Post${who ? ` by ${who}` : ""}${post.caption ? `: ${post.caption.slice(0, 100)}` : ""}`;
  return h("a.tile", { href: `#/p/${post.id}` }, photo(first, alt, { square: true }),
    post.media.length > 1 ? h("span.multi", { "aria-label": `${post.media.length} photos` }, "❏") : null);
}
