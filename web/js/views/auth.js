// Sign up and sign in.
import { describe, signIn, signUp } from "../api.js";
import { h } from "../dom.js";

function field(label, name, attrs = {}) {
  const id = `f-${name}`;
  return h("p.field", {}, h("label", { for: id }, label), h("input", { id, name, required: true, ...attrs }));
}

function form(main, title, fields, submitLabel, action, footer) {
  const error = h("p.error", { role: "alert" });
  const button = h("button.primary", { type: "submit" }, submitLabel);
  const el = h("form.card.auth", { "aria-labelledby": "auth-title" },
    h("h1", { id: "auth-title" }, title), ...fields, error, button, footer);
  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    button.disabled = true;
    try {
      await action(Object.fromEntries(new FormData(el)));
      location.hash = "#/";
    } catch (e) {
      error.textContent = describe(e);
      const name = e.metadata?.field;
      if (name) el.elements[name]?.focus();
    } finally {
      button.disabled = false;
    }
  });
  main.append(h("div.centered", {}, h("p.logo", {}, "Pictor"), el));
  el.querySelector("input").focus();
}

export function signInScreen(main) {
  // Shown once the server answers TWO_FACTOR_REQUIRED: the password was right, a code is missing.
  const code = field("Code from your authenticator app (or a recovery code)", "code",
                     { autocomplete: "one-time-code", inputmode: "numeric", required: false });
  code.hidden = true;
  form(main, "Sign in", [
    field("Username or email", "username", { autocomplete: "username", autocapitalize: "none" }),
    field("Password", "password", { type: "password", autocomplete: "current-password" }),
    code,
  ], "Sign in", async (v) => {
    try {
      await signIn(v.username.trim(), v.password, (v.code || "").trim());
    } catch (e) {
      if (e.reason === "TWO_FACTOR_REQUIRED") {
        code.hidden = false;
        e.metadata = { field: "code" };
      }
      throw e;
    }
  },
  h("p", {}, "New here? ", h("a", { href: "#/signup" }, "Create an account")));
}

export function signUpScreen(main) {
  form(main, "Create an account", [
    field("Username", "username", { autocomplete: "username", autocapitalize: "none", pattern: "[A-Za-z0-9._]{1,30}",
                                    title: "1-30 letters, digits, dots or underscores" }),
    field("Email", "email", { type: "email", autocomplete: "email" }),
    field("Name", "display_name", { autocomplete: "name", required: false, maxlength: 64 }),
    field("Password", "password", { type: "password", autocomplete: "new-password", minlength: 8 }),
  ], "Sign up", (v) => signUp({ ...v, username: v.username.trim(), email: v.email.trim() }),
  h("p", {}, "Have an account? ", h("a", { href: "#/signin" }, "Sign in")));
}
