// Injected into every document before the page's scripts (CDP
// `Page.addScriptToEvaluateOnNewDocument`): records what the page asks of
// the WebAuthn API in `window.__passlock`, without changing the answers.
// Each `navigator.credentials.get/create` call is one entry with its
// mediation, whether it carries an abort signal, a summary of the options
// and its outcome ("pending", "resolved", "rejected:<ErrorName>"); the JSON
// helpers and the Signal API calls are entries too (the Signal API ones with
// their arguments; they then go to the browser's own method where it has one).
(() => {
  const log = [];
  // The window's own properties before any page script ran, to find new globals.
  const globals = Object.getOwnPropertyNames(window);
  Object.defineProperty(window, "__passlock", { value: log });
  Object.defineProperty(window, "__passlockGlobals", { value: globals });
  const b64url = (buf) => {
    if (!buf) return null;
    const bytes = new Uint8Array(buf instanceof ArrayBuffer ? buf : buf.buffer);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };
  const summary = (pk) => {
    if (!pk) return null;
    return {
      challengeIsBuffer: pk.challenge instanceof ArrayBuffer || ArrayBuffer.isView(pk.challenge),
      rpId: pk.rpId ?? (pk.rp ? pk.rp.id : null),
      userId: pk.user ? b64url(pk.user.id) : null,
      userName: pk.user ? pk.user.name : null,
      allowCredentials: pk.allowCredentials ? pk.allowCredentials.length : 0,
      excludeCredentials: pk.excludeCredentials ? pk.excludeCredentials.length : 0,
      userVerification: pk.userVerification ?? (pk.authenticatorSelection ? pk.authenticatorSelection.userVerification : null),
    };
  };
  const creds = navigator.credentials;
  if (creds) {
    for (const kind of ["get", "create"]) {
      const original = creds[kind].bind(creds);
      creds[kind] = (options) => {
        const entry = {
          kind,
          mediation: (options && options.mediation) || null,
          signal: Boolean(options && options.signal),
          options: summary(options && options.publicKey),
          outcome: "pending",
        };
        log.push(entry);
        return original(options).then(
          (cred) => {
            entry.outcome = "resolved";
            entry.credentialId = cred ? cred.id : null;
            return cred;
          },
          (e) => {
            entry.outcome = `rejected:${e && e.name}`;
            throw e;
          },
        );
      };
    }
  }
  const P = window.PublicKeyCredential;
  if (!P) return;
  for (const name of ["parseCreationOptionsFromJSON", "parseRequestOptionsFromJSON"]) {
    const original = P[name];
    if (typeof original !== "function") continue;
    P[name] = function (json) {
      log.push({ kind: name });
      return original.call(this, json);
    };
  }
  const toJSON = P.prototype.toJSON;
  if (typeof toJSON === "function") {
    P.prototype.toJSON = function () {
      log.push({ kind: "toJSON" });
      return toJSON.call(this);
    };
  }
  for (const name of ["signalUnknownCredential", "signalAllAcceptedCredentials", "signalCurrentUserDetails"]) {
    const original = P[name];
    P[name] = function (details) {
      log.push({ kind: name, details: JSON.parse(JSON.stringify(details)) });
      return typeof original === "function" ? original.call(this, details).catch(() => undefined) : Promise.resolve();
    };
  }
})();
