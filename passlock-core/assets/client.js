// passlock browser client. Dependency free, an ES module that writes nothing
// to `globalThis`. Served by the adapters at `{prefix}/client.js` (its types
// at `{prefix}/client.d.ts`); the default prefix is taken from this module's
// own URL, and `createClient({ prefix })` names it explicitly (for a bundler
// that moves the file).
//
//   import { register, login, autofill, upgrade, stepUp, logout, logoutEverywhere,
//            session, passkeys, renamePasskey, deletePasskey, isSupported,
//            capabilities, withStepUp, fetchJSON, createClient, PasslockError }
//     from "/passkey/client.js";
//
// Every function throws a `PasslockError` with a machine `code` (the app's
// `error` code, the passkey service's error tag, or one of "cancelled",
// "passkeys_unavailable", "unsupported", "network", "webauthn_failed") and a
// human `message`.

/** The error every function of this client throws. */
export class PasslockError extends Error {
  /**
   * @param {string} code machine code, e.g. "step_up_required", "cancelled"
   * @param {string} message one sentence for humans
   * @param {{status?: number, body?: any, cause?: any}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = "PasslockError";
    this.code = code;
    this.status = extra.status;
    this.body = extra.body;
  }
}

// ---- support detection ------------------------------------------------------

function pkc() {
  return typeof PublicKeyCredential === "undefined" ? undefined : PublicKeyCredential;
}

/** Whether this browser can use passkeys at all (WebAuthn in a secure context). */
export function isSupported() {
  return (
    typeof navigator !== "undefined" &&
    Boolean(navigator.credentials) &&
    typeof navigator.credentials.create === "function" &&
    typeof navigator.credentials.get === "function" &&
    pkc() !== undefined &&
    (typeof isSecureContext === "undefined" || isSecureContext)
  );
}

function requireWebAuthn() {
  if (!isSupported()) {
    throw new PasslockError("passkeys_unavailable", "This browser cannot use passkeys here");
  }
}

const SIGNALS = ["signalUnknownCredential", "signalAllAcceptedCredentials", "signalCurrentUserDetails"];

async function ask(fn) {
  try {
    return Boolean(await fn());
  } catch (_) {
    return false;
  }
}

/**
 * What this browser offers: `PublicKeyCredential.getClientCapabilities()`
 * where it exists, else computed from the older probes. Always has the keys
 * `conditionalGet`, `conditionalCreate`, `hybridTransport`,
 * `passkeyPlatformAuthenticator`, `userVerifyingPlatformAuthenticator`,
 * `relatedOrigins`, `signalUnknownCredential`, `signalAllAcceptedCredentials`,
 * `signalCurrentUserDetails` (all false where passkeys are unavailable).
 */
export async function capabilities() {
  const caps = {
    conditionalGet: false,
    conditionalCreate: false,
    hybridTransport: false,
    passkeyPlatformAuthenticator: false,
    userVerifyingPlatformAuthenticator: false,
    relatedOrigins: false,
    signalUnknownCredential: false,
    signalAllAcceptedCredentials: false,
    signalCurrentUserDetails: false,
  };
  if (!isSupported()) return caps;
  const P = pkc();
  for (const name of SIGNALS) caps[name] = typeof P[name] === "function";
  if (typeof P.isConditionalMediationAvailable === "function") {
    caps.conditionalGet = await ask(() => P.isConditionalMediationAvailable());
  }
  if (typeof P.isUserVerifyingPlatformAuthenticatorAvailable === "function") {
    const platform = await ask(() => P.isUserVerifyingPlatformAuthenticatorAvailable());
    caps.userVerifyingPlatformAuthenticator = platform;
    caps.passkeyPlatformAuthenticator = platform;
  }
  if (typeof P.getClientCapabilities === "function") {
    try {
      const reported = await P.getClientCapabilities();
      for (const [key, value] of Object.entries(reported || {})) caps[key] = Boolean(value);
    } catch (_) {
      // Keep the computed answer.
    }
  }
  return caps;
}

// ---- base64url <-> ArrayBuffer ------------------------------------------

function toBuffer(b64url) {
  const b64 = String(b64url).replace(/-/g, "+").replace(/_/g, "/");
  const padded = b64 + "===".slice((b64.length + 3) % 4);
  const bin = atob(padded);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes.buffer;
}

function toBase64url(buffer) {
  if (buffer == null) return undefined;
  const bytes = buffer instanceof ArrayBuffer ? new Uint8Array(buffer) : new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let bin = "";
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function descriptors(list) {
  return (list || []).map((d) => ({ ...d, id: toBuffer(d.id) }));
}

function unwrapOptions(optionsJSON) {
  const o = typeof optionsJSON === "string" ? JSON.parse(optionsJSON) : optionsJSON;
  return o && o.publicKey ? o.publicKey : o;
}

// JSON `null`s are dropped: the browser's JSON parsers refuse them where a
// dictionary or a string is expected.
function withoutNulls(value) {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value && typeof value === "object") {
    const out = {};
    for (const [k, v] of Object.entries(value)) if (v !== null && v !== undefined) out[k] = withoutNulls(v);
    return out;
  }
  return value;
}

// Options in their JSON form (base64url strings) become what
// `navigator.credentials` takes: through the browser's own parser where it
// has one, else converted by hand. `hints` pass through either way.
function creationOptions(json) {
  const P = pkc();
  if (typeof P.parseCreationOptionsFromJSON === "function") return P.parseCreationOptionsFromJSON(json);
  return {
    ...json,
    challenge: toBuffer(json.challenge),
    user: { ...json.user, id: toBuffer(json.user.id) },
    excludeCredentials: descriptors(json.excludeCredentials),
  };
}

function requestOptions(json) {
  const P = pkc();
  if (typeof P.parseRequestOptionsFromJSON === "function") return P.parseRequestOptionsFromJSON(json);
  const out = { ...json, challenge: toBuffer(json.challenge) };
  if (json.allowCredentials) out.allowCredentials = descriptors(json.allowCredentials);
  return out;
}

// A credential as the JSON the passkey service verifies: `toJSON()` where
// the browser has it, else converted by hand.
function credentialJSON(cred) {
  if (typeof cred.toJSON === "function") return cred.toJSON();
  const r = cred.response;
  const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toBase64url(r.attestationObject);
    response.transports = typeof r.getTransports === "function" ? r.getTransports() : [];
    if (typeof r.getAuthenticatorData === "function") response.authenticatorData = toBase64url(r.getAuthenticatorData());
    if (typeof r.getPublicKey === "function") {
      const pk = r.getPublicKey();
      if (pk) response.publicKey = toBase64url(pk);
    }
    if (typeof r.getPublicKeyAlgorithm === "function") response.publicKeyAlgorithm = r.getPublicKeyAlgorithm();
  } else {
    response.authenticatorData = toBase64url(r.authenticatorData);
    response.signature = toBase64url(r.signature);
    if (r.userHandle && r.userHandle.byteLength > 0) response.userHandle = toBase64url(r.userHandle);
  }
  return {
    id: cred.id,
    rawId: toBase64url(cred.rawId),
    type: cred.type,
    response,
    clientExtensionResults: typeof cred.getClientExtensionResults === "function" ? cred.getClientExtensionResults() : {},
    authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
  };
}

function webauthnError(e) {
  if (e instanceof PasslockError) return e;
  const name = e && e.name;
  if (name === "NotAllowedError" || name === "AbortError") {
    return new PasslockError("cancelled", "The passkey prompt was cancelled or timed out", { cause: e });
  }
  if (name === "InvalidStateError") {
    return new PasslockError("credential_exists", "This passkey is already registered", { cause: e });
  }
  if (name === "NotSupportedError" || name === "SecurityError") {
    return new PasslockError("unsupported", "Passkeys are not available here", { cause: e });
  }
  return new PasslockError("webauthn_failed", "The passkey ceremony failed", { cause: e });
}

// ---- the Signal API -------------------------------------------------------
//
// Tells the user's passkey provider what the site knows, so it can hide or
// update passkeys. The WebAuthn user id and the relying party id are learnt
// from the ceremonies this browser ran (the options and the assertion) and
// kept per app user in localStorage; the list of accepted ids is sent only
// when the server's authenticator ids were seen to be credential ids (the
// embedded provider), never guessed. Every signal is a no-op where the
// browser lacks it, and never throws.

async function signal(method, details) {
  const P = pkc();
  if (!P || typeof P[method] !== "function") return false;
  try {
    await P[method](details);
    return true;
  } catch (_) {
    return false;
  }
}

function storage() {
  try {
    return typeof localStorage === "undefined" ? undefined : localStorage;
  } catch (_) {
    return undefined;
  }
}

// ---- HTTP -----------------------------------------------------------------

/**
 * Sends a JSON request (same-origin credentials, `Content-Type:
 * application/json`) and returns the parsed answer (null for an empty one).
 * A non-2xx answer throws a PasslockError with the body's `error` code (or
 * the passkey service's `_tag`).
 */
export async function fetchJSON(url, { method = "POST", body } = {}) {
  let res;
  try {
    res = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new PasslockError("network", "The server could not be reached", { cause: e });
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = null;
    }
  }
  if (!res.ok) {
    const code = (data && data.error) || (data && typeof data._tag === "string" && data._tag.replace(/^@error\//, "")) || `http_${res.status}`;
    const message = (data && data.message) || `The request failed with status ${res.status}`;
    throw new PasslockError(code, message, { status: res.status, body: data });
  }
  return data;
}

/** Runs `fn`; when it fails with `step_up_required`, verifies again with a passkey and retries once. */
export async function withStepUp(fn, client = defaultClient) {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof PasslockError) || e.code !== "step_up_required") throw e;
    await client.stepUp();
    return fn();
  }
}

function defaultPrefix() {
  try {
    const path = new URL(".", import.meta.url).pathname;
    return path.replace(/\/$/, "");
  } catch (_) {
    return "/passkey";
  }
}

// The codes of a sign-in refused because the site does not know the passkey.
const UNKNOWN_CREDENTIAL = new Set(["PasskeyNotFound", "unknown_credential", "unknown_authenticator"]);

/**
 * A client for the passlock routes under `prefix` (default: where this
 * module was loaded from, e.g. "/passkey").
 */
export function createClient({ prefix = defaultPrefix() } = {}) {
  prefix = String(prefix).replace(/\/$/, "");
  const app = (path) => `${prefix}${path}`;
  const service = (answer, path) => `${String(answer.endpoint).replace(/\/$/, "")}/v2/${encodeURIComponent(answer.tenancyId)}/passkey/${path}`;

  // The one pending background request (autofill, or the conditional create
  // of `upgrade`); a ceremony started from a button aborts it, and the
  // background promise then resolves to null.
  let background = null;

  function abortBackground() {
    if (background) {
      background.abort(new DOMException("passlock: another passkey ceremony started", "AbortError"));
      background = null;
    }
  }

  // Runs `work(signal)` as the background request; null when it was aborted
  // (by `external`, or by a button ceremony) or the browser declined
  // (a conditional request ends with "cancelled" when nothing was picked).
  async function inBackground(external, work) {
    abortBackground();
    const controller = new AbortController();
    background = controller;
    const stop = () => controller.abort(external.reason);
    if (external) {
      if (external.aborted) return null;
      external.addEventListener("abort", stop, { once: true });
    }
    try {
      return await work(controller.signal);
    } catch (e) {
      if (controller.signal.aborted || (e instanceof PasslockError && e.code === "cancelled")) return null;
      throw e;
    } finally {
      if (background === controller) background = null;
      if (external) external.removeEventListener("abort", stop);
    }
  }

  // ---- what this browser learnt about each app user's passkeys ----
  const key = (userId) => `passlock:${prefix}:webauthn-user:${userId}`;

  function recall(userId) {
    const s = storage();
    if (!s || userId == null) return null;
    try {
      return JSON.parse(s.getItem(key(userId)) || "null");
    } catch (_) {
      return null;
    }
  }

  function remember(userId, facts) {
    const s = storage();
    if (!s || userId == null) return;
    const merged = { ...(recall(userId) || {}), ...withoutNulls(facts) };
    try {
      s.setItem(key(userId), JSON.stringify(merged));
    } catch (_) {
      // A full or disabled storage only costs the Signal API calls.
    }
  }

  // One ceremony against the passkey service: options, the browser, verification.
  // Resolves to `{ code, cred, json, rpId }` (json: the options as JSON).
  async function ceremony(kind, answer, { mediation, signal: abortSignal } = {}) {
    requireWebAuthn();
    const tokenField = kind === "registration" ? "registrationToken" : "authenticationToken";
    const options = await fetchJSON(service(answer, `${kind}/options`), { body: { [tokenField]: answer[tokenField] } });
    const json = withoutNulls(unwrapOptions(options.optionsJSON));
    let cred;
    try {
      const request = {};
      if (mediation) request.mediation = mediation;
      if (abortSignal) request.signal = abortSignal;
      if (kind === "registration") {
        request.publicKey = creationOptions(json);
        cred = await navigator.credentials.create(request);
      } else {
        request.publicKey = requestOptions(json);
        cred = await navigator.credentials.get(request);
      }
    } catch (e) {
      if (abortSignal && abortSignal.aborted) throw e;
      throw webauthnError(e);
    }
    if (!cred) throw new PasslockError("cancelled", "No passkey was chosen");
    const rpId = (kind === "registration" ? json.rp && json.rp.id : json.rpId) || location.hostname;
    let verified;
    try {
      verified = await fetchJSON(service(answer, `${kind}/verification`), {
        body: { response: credentialJSON(cred), sessionToken: options.sessionToken },
      });
    } catch (e) {
      await unknownCredential(e, cred, rpId);
      throw e;
    }
    if (!verified || !verified.code) throw new PasslockError("bad_response", "The passkey service gave no code");
    return { code: verified.code, cred, json, rpId };
  }

  // A sign-in refused because the site does not know this passkey: tell the
  // passkey provider, so it stops offering it.
  async function unknownCredential(e, cred, rpId) {
    if (!(e instanceof PasslockError) || !UNKNOWN_CREDENTIAL.has(e.code)) return;
    const body = e.body || {};
    await signal("signalUnknownCredential", {
      rpId: body.rpId || rpId,
      credentialId: body.credentialId || cred.id,
    });
  }

  // Records what a finished ceremony taught about the signed-in user.
  function learn(result, done) {
    if (!result || result.user_id == null) return;
    const facts = {
      rpId: done.rpId,
      credentialIds: String(result.authenticator_id) === done.cred.id,
    };
    if (done.json.user) {
      facts.userId = done.json.user.id;
      facts.name = done.json.user.name;
      facts.displayName = done.json.user.displayName;
    } else {
      const handle = done.cred.response && done.cred.response.userHandle;
      if (handle && handle.byteLength > 0) facts.userId = toBase64url(handle);
    }
    remember(result.user_id, facts);
  }

  async function finish(route, done) {
    let result;
    try {
      result = await fetchJSON(app(route), { body: { code: done.code } });
    } catch (e) {
      await unknownCredential(e, done.cred, done.rpId);
      throw e;
    }
    learn(result, done);
    return result;
  }

  async function authenticate(purpose, route) {
    requireWebAuthn();
    abortBackground();
    const answer = await fetchJSON(app("/authentication/authorize"), { body: { purpose } });
    return finish(route, await ceremony("authentication", answer));
  }

  // The signed-in user's WebAuthn facts, or null when this browser has not
  // seen them (or, for the accepted list, when ids are not credential ids).
  async function currentUser() {
    const s = await client.session();
    if (!s || s.second_factor_pending) return null;
    const facts = recall(s.user_id);
    return facts && facts.rpId && facts.userId ? facts : null;
  }

  // A list fetched before a registration started (or while one runs) may
  // miss the new passkey: such a list is never signalled, or the browser
  // would remove the passkey it just saved.
  let registrations = 0;
  let registering = 0;

  async function registration(work) {
    registrations += 1;
    registering += 1;
    try {
      return await work();
    } finally {
      registering -= 1;
    }
  }

  async function signalAccepted(list, epoch) {
    const facts = await currentUser();
    if (!facts || !facts.credentialIds || registering > 0 || epoch !== registrations) return false;
    return signal("signalAllAcceptedCredentials", {
      rpId: facts.rpId,
      userId: facts.userId,
      allAcceptedCredentialIds: list.map((p) => String(p.authenticator_id)),
    });
  }

  const client = {
    prefix,
    isSupported,
    capabilities,

    /**
     * Signs up (signed out, `username` required) or adds a passkey (signed
     * in), optionally named `passkeyName`. Resolves to `{user_id, authenticator_id}`.
     */
    async register({ username, passkeyName } = {}) {
      requireWebAuthn();
      abortBackground();
      const body = {};
      if (username !== undefined && username !== null) body.username = username;
      if (passkeyName !== undefined && passkeyName !== null && passkeyName !== "") body.passkey_name = passkeyName;
      return registration(async () => {
        const answer = await fetchJSON(app("/registration/authorize"), { body });
        return finish("/register", await ceremony("registration", answer));
      });
    },

    /** Signs in with any passkey of this site (usernameless). Resolves to `{user_id, authenticator_id}`. */
    login() {
      return authenticate("login", "/login");
    },

    /** Verifies the signed-in user again with one of their passkeys. */
    stepUp() {
      return authenticate("step_up", "/step-up");
    },

    /**
     * Offers the site's passkeys in the autofill of the username field
     * (`autocomplete="username webauthn"`) and signs in with the one the
     * user picks. Resolves to `{user_id, authenticator_id}`, or to null when
     * the browser has no autofill for passkeys or the request was aborted
     * (by `signal`, or by a ceremony started from a button). Start it when
     * the sign-in form shows.
     */
    async autofill({ signal } = {}) {
      requireWebAuthn();
      if (!(await capabilities()).conditionalGet) return null;
      return inBackground(signal, async (aborted) => {
        const answer = await fetchJSON(app("/authentication/authorize"), { body: { purpose: "login", mediation: "conditional" } });
        if (aborted.aborted) return null;
        const done = await ceremony("authentication", answer, { mediation: "conditional", signal: aborted });
        if (aborted.aborted) return null;
        return finish("/login", done);
      });
    },

    /**
     * After a sign-in with a password, asks the browser to save a passkey
     * for the signed-in user without a prompt (conditional create) where it
     * offers that. Resolves to `{user_id, authenticator_id}` when a passkey
     * was added, or to null when the browser lacks conditional create,
     * declined, or the request was aborted (by `signal`, or by a ceremony
     * started from a button); nothing is shown to the user either way.
     */
    async upgrade({ passkeyName, signal } = {}) {
      if (!isSupported() || !(await capabilities()).conditionalCreate) return null;
      return inBackground(signal, (aborted) => registration(async () => {
        const body = { mediation: "conditional" };
        if (passkeyName) body.passkey_name = passkeyName;
        const answer = await fetchJSON(app("/registration/authorize"), { body });
        if (aborted.aborted) return null;
        let done;
        try {
          done = await ceremony("registration", answer, { mediation: "conditional", signal: aborted });
        } catch (e) {
          if (e instanceof PasslockError && e.code === "credential_exists") return null;
          throw e;
        }
        if (aborted.aborted) return null;
        return finish("/register", done);
      }));
    },

    /** Signs out (the session is deleted on the server). */
    async logout() {
      await fetchJSON(app("/logout"));
    },

    /** Signs out every other session of the user; this one stays signed in. */
    async logoutEverywhere() {
      await fetchJSON(app("/logout/everywhere"));
    },

    /** The session (`{user_id, authenticator_id, authenticated_at, verified_at, amr, second_factor_pending}`), or null when signed out. */
    async session() {
      try {
        return await fetchJSON(app("/session"), { method: "GET" });
      } catch (e) {
        if (e instanceof PasslockError && e.code === "not_authenticated") return null;
        throw e;
      }
    },

    /**
     * The signed-in user's passkeys (see `Passkey` in client.d.ts); tells
     * the browser which of the user's passkeys the site still accepts.
     */
    async passkeys() {
      const epoch = registrations;
      const list = await fetchJSON(app("/passkeys"), { method: "GET" });
      await signalAccepted(list || [], epoch);
      return list;
    },

    /** Renames one passkey (needs a recent step-up; see `withStepUp`). Resolves to the updated passkey. */
    async renamePasskey(id, name) {
      const updated = await fetchJSON(app(`/passkeys/${encodeURIComponent(id)}`), { method: "PATCH", body: { name } });
      const facts = await currentUser();
      if (facts && facts.name) {
        await signal("signalCurrentUserDetails", {
          rpId: facts.rpId,
          userId: facts.userId,
          name: facts.name,
          displayName: facts.displayName || facts.name,
        });
      }
      return updated;
    },

    /** Deletes one passkey (needs a recent step-up; see `withStepUp`); the browser is told it is gone. */
    async deletePasskey(id) {
      await fetchJSON(app(`/passkeys/${encodeURIComponent(id)}`), { method: "DELETE" });
      const epoch = registrations;
      const list = await fetchJSON(app("/passkeys"), { method: "GET" }).catch(() => null);
      if (list) await signalAccepted(list, epoch);
    },

    /** `withStepUp(fn)` bound to this client. */
    withStepUp(fn) {
      return withStepUp(fn, client);
    },
  };
  return client;
}

const defaultClient = createClient();

export const register = defaultClient.register;
export const login = defaultClient.login;
export const stepUp = defaultClient.stepUp;
export const autofill = defaultClient.autofill;
export const upgrade = defaultClient.upgrade;
export const logout = defaultClient.logout;
export const logoutEverywhere = defaultClient.logoutEverywhere;
export const session = defaultClient.session;
export const passkeys = defaultClient.passkeys;
export const renamePasskey = defaultClient.renamePasskey;
export const deletePasskey = defaultClient.deletePasskey;
export default defaultClient;
