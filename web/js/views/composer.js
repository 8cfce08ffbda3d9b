// The composer: pick 1-10 photos or videos, put them in order, edit each photo (crop to an aspect,
// rotate, a filter, adjustments, alt text), caption (with # and @ autocomplete) and location, then
// each goes up through the resumable upload API (a progress bar each), a photo's edit is applied
// (POST /v1/media/{id}:edit) and the post is created. A video is transcoded after: the post shows
// to others once it is ready.
import { api, describe } from "../api.js";
import { h, toast } from "../dom.js";
import { withMentions } from "../mentions.js";
import { uploadFile } from "../upload.js";
import { editRecipe, editSheet } from "./edit.js";

const MAX_ITEMS = 10;
const isVideo = (file) => file.type.startsWith("video/");

export function composerScreen(main) {
  /** @type {{file: File, url: string, media?: object, bar?: HTMLProgressElement, note?: HTMLElement}[]} */
  let picked = [];
  const list = h("ol.picked", { "aria-label": "Photos and videos, in the order they will appear" });
  const picker = h("input", { type: "file", id: "photos", accept: "image/*,video/*", multiple: true });
  const error = h("p.error", { role: "alert" });
  const status = h("p.status", { role: "status" });
  const share = h("button.primary", { type: "submit" }, "Share");

  function move(i, d) {
    const j = i + d;
    if (j < 0 || j >= picked.length) return;
    [picked[i], picked[j]] = [picked[j], picked[i]];
    draw();
    list.children[j]?.querySelector(d < 0 ? ".earlier" : ".later")?.focus();
  }

  function draw() {
    list.replaceChildren(...picked.map((item, i) => {
      item.bar ??= h("progress", { max: 100, value: 0, "aria-label": `Upload of ${item.file.name}` });
      item.note ??= h("span.note");
      const video = isVideo(item.file);
      return h("li", {},
        video
          ? h("video", { src: item.url, muted: true, playsinline: true, preload: "metadata",
                         "aria-label": `Video ${i + 1}: ${item.file.name}` })
          : h("img", { src: item.preview || item.url, alt: item.recipe?.alt_text || `Photo ${i + 1}: ${item.file.name}` }),
        h("div.controls", {},
          h("span.name", {}, `${i + 1}. ${item.file.name}`),
          h("span", {},
            video ? h("span.meta", {}, "Video") : h("button.edit", { type: "button", onclick: () => edit(item),
                                                                      "aria-label": `Edit ${item.file.name}` },
              item.recipe ? "Edited" : "Edit"), " ",
            h("button.earlier", { type: "button", disabled: i === 0, onclick: () => move(i, -1),
                                  "aria-label": `Move ${item.file.name} earlier` }, "↑"),
            h("button.later", { type: "button", disabled: i === picked.length - 1, onclick: () => move(i, 1),
                                "aria-label": `Move ${item.file.name} later` }, "↓"),
            h("button", { type: "button", "aria-label": `Remove ${item.file.name}`, onclick: () => {
              URL.revokeObjectURL(item.url);
              picked.splice(i, 1);
              draw();
            } }, "✕")),
          item.bar, item.note));
    }));
    share.disabled = picked.length === 0;
  }

  async function upload(item) {
    if (item.media) return item.media;
    item.note.textContent = "";
    item.media = await uploadFile(item.file, (sent, total, note) => {
      item.bar.value = Math.round((100 * sent) / Math.max(1, total));
      item.note.textContent = note;
      status.textContent = note ? `${item.file.name}: ${note}` : `Uploading ${item.file.name}…`;
    }).catch((e) => {
      item.note.textContent = describe(e);
      throw new Error(`${item.file.name}: ${describe(e)}`);
    });
    item.note.textContent = "Uploaded";
    status.textContent = "";
    return item.media;
  }

  /** The edit sheet needs the photo on the server (the filter previews are made from it). */
  async function edit(item) {
    error.textContent = "";
    try {
      const media = await upload(item);
      editSheet(media, item.file.name, item.recipe, (recipe, preview) => {
        item.recipe = recipe;
        item.preview = recipe ? preview : null;
        item.edited = null;
        draw();
        list.querySelector(`[aria-label="Edit ${CSS.escape(item.file.name)}"]`)?.focus();
      });
    } catch (e) {
      error.textContent = e.message;
    }
  }

  picker.addEventListener("change", () => {
    error.textContent = "";
    const files = [...picker.files];
    if (picked.length + files.length > MAX_ITEMS) {
      error.textContent = `A post holds at most ${MAX_ITEMS} photos and videos: ${picked.length + files.length} picked.`;
    }
    for (const file of files.slice(0, MAX_ITEMS - picked.length)) picked.push({ file, url: URL.createObjectURL(file) });
    picker.value = "";
    draw();
  });

  const form = h("form.card.composer", { "aria-labelledby": "composer-title" },
    h("h1", { id: "composer-title" }, "New post"),
    // The input itself takes the keyboard focus (Enter or Space opens the picker); its label is what shows.
    h("p.field", {}, picker, h("label.button", { for: "photos" }, "Choose photos or videos (1–10)")),
    list,
    h("p.field", {}, h("label", { for: "caption" }, "Caption"),
      withMentions(h("textarea", { id: "caption", name: "caption", maxlength: 2200, rows: 3,
                                   placeholder: "Write a caption… #tags and @mentions" }))),
    h("fieldset.location", {}, h("legend", {}, "Location (optional)"),
      h("label", { for: "place" }, "Place"), h("input", { id: "place", name: "place", maxlength: 100 }),
      h("label", { for: "lat" }, "Latitude"), h("input", { id: "lat", name: "lat", type: "number", step: "any",
                                                          min: -90, max: 90 }),
      h("label", { for: "lng" }, "Longitude"), h("input", { id: "lng", name: "lng", type: "number", step: "any",
                                                           min: -180, max: 180 })),
    error, status, share);
  draw();

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const v = Object.fromEntries(new FormData(form));
    const place = String(v.place || "").trim();
    if (place && (v.lat === "" || v.lng === "")) {
      error.textContent = "A place needs its latitude and longitude.";
      form.elements.lat.focus();
      return;
    }
    share.disabled = true;
    try {
      for (const item of picked) await upload(item);
      for (const item of picked) {
        if (!item.recipe || item.edited) continue;
        status.textContent = `Applying the edit of ${item.file.name}…`;
        const body = editRecipe(item.recipe);
        const altOnly = Object.keys(body).length === 1 && "alt_text" in body;
        item.edited = await api(altOnly ? `/v1/media/${item.media.id}` : `/v1/media/${item.media.id}:edit`,
          { method: altOnly ? "PATCH" : "POST", body }).catch((e) => {
          item.note.textContent = describe(e);
          throw new Error(`${item.file.name}: ${describe(e)}`);
        });
      }
      status.textContent = "Sharing…";
      const body = { media_ids: picked.map((p) => (p.edited || p.media).id), caption: v.caption || "", request_id: crypto.randomUUID() };
      if (place) body.location = { name: place, lat: Number(v.lat), lng: Number(v.lng) };
      await api("/v1/posts", { method: "POST", body });
      toast(picked.some((p) => isVideo(p.file)) ? "Shared: others see it once the video is processed" : "Shared");
      picked.forEach((p) => URL.revokeObjectURL(p.url));
      location.hash = "#/me";
    } catch (e) {
      error.textContent = describe(e);
      status.textContent = "";
    } finally {
      share.disabled = picked.length === 0;
    }
  });
  main.append(form);
}
