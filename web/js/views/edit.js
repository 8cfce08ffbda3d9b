// The photo edit sheet of the composer: aspect (centre crop), rotation, a filter (the server's own
// previews of this photo, GET /v1/media/filters?media_id=), adjustments, alt text. The sheet only
// keeps a recipe; the composer applies it with POST /v1/media/{id}:edit before posting.
import { api, describe } from "../api.js";
import { h } from "../dom.js";

const ASPECTS = [["", "Original"], ["SQUARE", "Square 1:1"], ["PORTRAIT", "Portrait 4:5"], ["LANDSCAPE", "Landscape 1.91:1"]];
const RATIOS = { SQUARE: "1 / 1", PORTRAIT: "4 / 5", LANDSCAPE: "1.91 / 1" };
const ADJUSTMENTS = [["brightness", "Brightness"], ["contrast", "Contrast"], ["saturation", "Saturation"],
  ["warmth", "Warmth"], ["fade", "Fade"], ["vignette", "Vignette"], ["sharpen", "Sharpen"]];

export function blankRecipe() {
  return { aspect: "", rotate: 0, filter: "normal", adjustments: Object.fromEntries(ADJUSTMENTS.map(([k]) => [k, 0])), alt_text: "" };
}

/** The request body of POST /v1/media/{id}:edit for `recipe`: only what differs from the photo as it is. */
export function editRecipe(recipe) {
  const body = {};
  if (recipe.aspect) body.aspect = recipe.aspect;
  if (recipe.rotate) body.rotate = recipe.rotate;
  if (recipe.filter && recipe.filter !== "normal") body.filter = recipe.filter;
  const moved = Object.entries(recipe.adjustments).filter(([, v]) => v !== 0);
  if (moved.length) body.adjustments = Object.fromEntries(moved);
  if (recipe.alt_text.trim()) body.alt_text = recipe.alt_text.trim();
  return body;
}

/** An approximation in CSS of the adjustments, for the preview while sliding (the server's result is exact). */
function cssFilter(a) {
  return [`brightness(${1 + a.brightness / 200})`, `contrast(${1 + a.contrast / 100})`, `saturate(${1 + a.saturation / 100})`,
    a.warmth > 0 ? `sepia(${a.warmth / 200})` : `hue-rotate(${a.warmth / 10}deg)`].join(" ");
}

/** Opens the sheet over the composer; `done(recipe | null, previewUrl)` when the person is done. */
export function editSheet(media, name, current, done) {
  const recipe = structuredClone(current || blankRecipe());
  const smallest = media.url_template.replace("{variant}", "320.webp");
  let previewUrl = smallest;
  const image = h("img.edit-preview", { alt: `Preview of ${name}`, src: smallest });
  const frame = h("div.edit-frame", {}, image);
  const filters = h("div.filters", { role: "radiogroup", "aria-label": "Filter" }, h("p.status", {}, "Loading filters…"));
  const error = h("p.error", { role: "alert" });
  const dialog = h("dialog.edit-sheet", { "aria-labelledby": "edit-sheet-title" });

  const paint = () => {
    frame.style.aspectRatio = RATIOS[recipe.aspect] || `${media.width} / ${media.height}`;
    image.style.transform = recipe.rotate ? `rotate(${recipe.rotate}deg)` : "";
    image.style.filter = cssFilter(recipe.adjustments);
    image.src = previewUrl;
  };

  const aspect = h("select", { id: "edit-aspect", onchange: (e) => { recipe.aspect = e.target.value; paint(); } },
    ASPECTS.map(([v, label]) => h("option", { value: v, selected: recipe.aspect === v }, label)));
  const rotate = h("button", { type: "button", onclick: () => {
    recipe.rotate = (recipe.rotate + 90) % 360;
    rotate.textContent = `Rotate (${recipe.rotate}°)`;
    paint();
  } }, `Rotate (${recipe.rotate}°)`);
  const sliders = ADJUSTMENTS.map(([key, label]) => {
    const out = h("output", { for: `adj-${key}` }, String(recipe.adjustments[key]));
    return h("p.slider", {}, h("label", { for: `adj-${key}` }, label),
      h("input", { type: "range", id: `adj-${key}`, min: -100, max: 100, step: 1, value: String(recipe.adjustments[key]),
                   oninput: (e) => { recipe.adjustments[key] = Number(e.target.value); out.textContent = e.target.value; paint(); } }),
      out);
  });
  const alt = h("textarea", { id: "edit-alt", rows: 2, maxlength: 1000,
                              oninput: (e) => { recipe.alt_text = e.target.value; } }, recipe.alt_text);
  const form = h("form", { method: "dialog" },
    h("h2", { id: "edit-sheet-title" }, `Edit ${name}`),
    frame,
    h("p.field", {}, h("label", { for: "edit-aspect" }, "Aspect"), aspect, " ", rotate),
    h("fieldset", {}, h("legend", {}, "Filter"), filters),
    h("fieldset.adjustments", {}, h("legend", {}, "Adjustments"), ...sliders),
    h("p.field", {}, h("label", { for: "edit-alt" }, "Alt text (describes the photo for people who cannot see it)"), alt),
    error,
    h("p.sheet-actions", {},
      h("button", { type: "button", onclick: () => dialog.close("cancel") }, "Cancel"),
      h("button.primary", { type: "submit", value: "done" }, "Done")));
  dialog.append(form);
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "done") done(Object.keys(editRecipe(recipe)).length ? recipe : null, previewUrl);
    dialog.remove();
  });
  document.body.append(dialog);
  dialog.showModal();
  paint();

  api(`/v1/media/filters?media_id=${media.id}`).then((r) => {
    filters.replaceChildren(...r.filters.map((f) => {
      const id = `filter-${f.name}`;
      if (f.name === recipe.filter && f.preview_url) previewUrl = f.preview_url;
      return h("span.filter", {},
        h("input", { type: "radio", name: "filter", id, value: f.name, checked: f.name === recipe.filter, onchange: () => {
          recipe.filter = f.name;
          previewUrl = f.preview_url || smallest;
          paint();
        } }),
        h("label", { for: id }, f.preview_url ? h("img", { src: f.preview_url, alt: "", loading: "lazy" }) : null, f.title));
    }));
    paint();
  }).catch((e) => {
    filters.replaceChildren();
    error.textContent = `Filters: ${describe(e)}`;
  });
}
