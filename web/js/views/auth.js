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
  form(main, "Sign in", [
    field("Username or email", "username", { autocomplete: "username", autocapitalize: "none" }),
    field("Password", "password", { type: "password", autocomplete: "current-password" }),
  ], "Sign in", (v) => signIn(v.username.trim(), v.password),
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
