// Account recovery for the example page: a user who lost every passkey asks
// for a one-time code by email, enters it, and enrolls a new passkey, which
// signs them in. The page needs only a link `#recovery-link` and an empty
// container `#recovery`; this module builds the rest.
//
// Elements (the browser test relies on them): `#recovery-email`,
// `#recovery-start`, `#recovery-code`, `#recovery-verify`,
// `#recovery-message`.
import { fetchJSON, register } from "/passkey/client.js";

const $ = (id) => document.getElementById(id);
const box = $("recovery");
let challenge = null;

function el(tag, props = {}, children = []) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

const say = (text) => {
  $("recovery-message").textContent = text;
};

box.append(
  el("h2", { textContent: "Recover your account" }),
  el("label", { htmlFor: "recovery-email", textContent: "Email address (your username) " }),
  el("input", { id: "recovery-email", type: "email", autocomplete: "email" }),
  el("button", { id: "recovery-start", type: "button", textContent: "Email me a code" }),
  el("div", { id: "recovery-code-step", hidden: true }, [
    el("label", { htmlFor: "recovery-code", textContent: "Code " }),
    el("input", { id: "recovery-code", inputMode: "numeric", autocomplete: "one-time-code" }),
    el("button", { id: "recovery-verify", type: "button", textContent: "Verify and add a passkey" }),
  ]),
  el("p", { id: "recovery-message", role: "status" }),
);

$("recovery-link").addEventListener("click", (e) => {
  e.preventDefault();
  box.hidden = false;
  $("recovery-email").focus();
});

$("recovery-start").addEventListener("click", async () => {
  try {
    const r = await fetchJSON("/passkey/recovery/start", { body: { email: $("recovery-email").value } });
    challenge = r.challenge;
    $("recovery-code-step").hidden = false;
    // The same answer whether or not the address has an account.
    say("If an account uses this address, a code is on its way.");
  } catch (e) {
    say(`Error: ${e.message} (${e.code})`);
  }
});

$("recovery-verify").addEventListener("click", async () => {
  try {
    await fetchJSON("/passkey/recovery/verify", { body: { challenge, code: $("recovery-code").value.trim() } });
    // The recovery session may enroll exactly one passkey, which signs in.
    const r = await register({});
    say(`Recovered: signed in as ${r.user_id}`);
    window.dispatchEvent(new Event("passlock:changed"));
  } catch (e) {
    say(`Error: ${e.message} (${e.code})`);
  }
});
