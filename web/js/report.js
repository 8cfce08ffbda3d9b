// Reporting a post, comment, story, message or account to the moderators (POST /v1/reports): a
// sheet with the reasons, an optional note, then a confirmation. One open report per target: a
// second report of the same thing answers the open one, and the sheet says it is received all the same.
import { api, describe } from "./api.js";
import { h } from "./dom.js";

const REASONS = [
  ["SPAM", "Spam"], ["NUDITY", "Nudity or sexual activity"], ["HARASSMENT", "Bullying or harassment"],
  ["HATE", "Hate speech or symbols"], ["VIOLENCE", "Violence or dangerous organisations"],
  ["SELF_HARM", "Suicide or self-injury"], ["INTELLECTUAL_PROPERTY", "Intellectual property violation"],
  ["IMPERSONATION", "Pretending to be someone else"], ["OTHER", "Something else"],
];

const WHAT = { POST: "post", COMMENT: "comment", STORY: "story", MESSAGE: "message", ACCOUNT: "account" };

let sheets = 0;

/** Opens the sheet to report `targetId` of `type` (a key of WHAT); resolves when it closes. */
export function reportSheet(type, targetId) {
  const n = (sheets += 1);
  const what = WHAT[type];
  const error = h("p.error", { role: "alert" });
  const note = h("textarea", { id: `report-note-${n}`, name: "note", maxlength: 1000, rows: 2 });
  const reasons = h("fieldset.reasons", {}, h("legend", {}, `Why are you reporting this ${what}?`),
    ...REASONS.map(([value, label]) => h("p.check", {},
      h("input", { type: "radio", name: "reason", value, id: `report-${value}-${n}`, required: true }),
      h("label", { for: `report-${value}-${n}` }, label))));
  const submit = h("button.primary", { type: "submit" }, "Report");
  const cancel = h("button", { type: "button" }, "Cancel");
  const form = h("form.report-form", {}, reasons,
    h("label", { for: `report-note-${n}` }, "Anything the moderators should know (optional)"), note,
    error, h("p.row", {}, submit, cancel));
  const dialog = h("dialog.report", { "aria-labelledby": `report-title-${n}` },
    h("h2", { id: `report-title-${n}` }, `Report ${what}`), form);
  cancel.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    try {
      await api("/v1/reports", { method: "POST", body: {
        target_type: `TARGET_TYPE_${type}`, target_id: targetId,
        reason: `REASON_${form.elements.reason.value}`, note: note.value.trim() } });
      const done = h("button.primary", { type: "button", onclick: () => dialog.close() }, "Done");
      dialog.replaceChildren(h("h2", { id: `report-title-${n}` }, "Thanks for letting us know"),
        h("p", { role: "status" }, `Your report of this ${what} was sent to the moderators. `
          + "They review it and act if it breaks the rules; the person is not told who reported it."), done);
      done.focus();
    } catch (e) {
      submit.disabled = false;
      error.textContent = describe(e);
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => { dialog.remove(); resolve(); }));
}

/** A "Report" button for a target; `label` names it for screen readers (e.g. "Report post by ann"). */
export function reportButton(type, targetId, label, className = "button.link") {
  return h(className, { type: "button", "aria-label": label, "aria-haspopup": "dialog",
                        onclick: () => reportSheet(type, targetId) }, "Report");
}
