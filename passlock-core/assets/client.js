// passlock browser client. Dependency free, an ES module; also sets
// `globalThis.Passlock`. Served by the adapters at `{prefix}/client.js`, and
// the prefix is taken from this module's own URL.
//
//   import { register, login, stepUp, logout, logoutEverywhere, session, passkeys,
//            deletePasskey, withStepUp, fetchJSON, PasslockError }
//     from "/passkey/client.js";
//
// Every function throws a `PasslockError` with a machine `code` (the app's
// `error` code, the passkey service's error tag, or one of "cancelled",
// "unsupported", "network", "webauthn_failed") and a human `message`.

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

function creationOptions(optionsJSON) {
  const o = unwrapOptions(optionsJSON);
  return {
    ...o,
    challenge: toBuffer(o.challenge),
    user: { ...o.user, id: toBuffer(o.user.id) },
    excludeCredentials: descriptors(o.excludeCredentials),
  };
}

function requestOptions(optionsJSON) {
  const o = unwrapOptions(optionsJSON);
  const out = { ...o, challenge: toBuffer(o.challenge) };
  if (o.allowCredentials) out.allowCredentials = descriptors(o.allowCredentials);
  return out;
}

function credentialJSON(cred) {
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

function requireWebAuthn() {
  if (typeof navigator === "undefined" || !navigator.credentials || typeof PublicKeyCredential === "undefined") {
    throw new PasslockError("unsupported", "This browser does not support passkeys");
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

/**
 * A client for the passlock routes under `prefix` (default: where this
 * module was loaded from, e.g. "/passkey").
 */
export function createClient({ prefix = defaultPrefix() } = {}) {
  const app = (path) => `${prefix}${path}`;
  const service = (answer, path) => `${String(answer.endpoint).replace(/\/$/, "")}/v2/${encodeURIComponent(answer.tenancyId)}/passkey/${path}`;

  async function ceremony(kind, answer) {
    requireWebAuthn();
    const tokenField = kind === "registration" ? "registrationToken" : "authenticationToken";
    const options = await fetchJSON(service(answer, `${kind}/options`), { body: { [tokenField]: answer[tokenField] } });
    let cred;
    try {
      cred = kind === "registration"
        ? await navigator.credentials.create({ publicKey: creationOptions(options.optionsJSON) })
        : await navigator.credentials.get({ publicKey: requestOptions(options.optionsJSON) });
    } catch (e) {
      throw webauthnError(e);
    }
    if (!cred) throw new PasslockError("cancelled", "No passkey was chosen");
    const verified = await fetchJSON(service(answer, `${kind}/verification`), {
      body: { response: credentialJSON(cred), sessionToken: options.sessionToken },
    });
    if (!verified || !verified.code) throw new PasslockError("bad_response", "The passkey service gave no code");
    return verified.code;
  }

  async function authenticate(purpose, route) {
    const answer = await fetchJSON(app("/authentication/authorize"), { body: { purpose } });
    const code = await ceremony("authentication", answer);
    return fetchJSON(app(route), { body: { code } });
  }

  return {
    prefix,
    /** Signs up (signed out, `username` required) or adds a passkey (signed in). Resolves to `{user_id, authenticator_id}`. */
    async register({ username } = {}) {
      const body = username === undefined || username === null ? {} : { username };
      const answer = await fetchJSON(app("/registration/authorize"), { body });
      const code = await ceremony("registration", answer);
      return fetchJSON(app("/register"), { body: { code } });
    },
    /** Signs in with any passkey of this site (usernameless). Resolves to `{user_id, authenticator_id}`. */
    login() {
      return authenticate("login", "/login");
    },
    /** Verifies the signed-in user again with one of their passkeys. */
    stepUp() {
      return authenticate("step_up", "/step-up");
    },
    /** Signs out (the session is deleted on the server). */
    async logout() {
      await fetchJSON(app("/logout"));
    },
    /** Signs out every other session of the user; this one stays signed in. */
    async logoutEverywhere() {
      await fetchJSON(app("/logout/everywhere"));
    },
    /** The session (`{user_id, authenticator_id, authenticated_at, verified_at, amr}`), or null when signed out. */
    async session() {
      try {
        return await fetchJSON(app("/session"), { method: "GET" });
      } catch (e) {
        if (e instanceof PasslockError && e.code === "not_authenticated") return null;
        throw e;
      }
    },
    /** The signed-in user's passkeys: `[{authenticator_id, created_at, last_used_at, current}]`. */
    passkeys() {
      return fetchJSON(app("/passkeys"), { method: "GET" });
    },
    /** Deletes one passkey (needs a recent step-up; see `withStepUp`). */
    async deletePasskey(id) {
      await fetchJSON(app(`/passkeys/${encodeURIComponent(id)}`), { method: "DELETE" });
    },
  };
}

const defaultClient = createClient();

export const register = defaultClient.register;
export const login = defaultClient.login;
export const stepUp = defaultClient.stepUp;
export const logout = defaultClient.logout;
export const logoutEverywhere = defaultClient.logoutEverywhere;
export const session = defaultClient.session;
export const passkeys = defaultClient.passkeys;
export const deletePasskey = defaultClient.deletePasskey;

globalThis.Passlock = { ...defaultClient, createClient, fetchJSON, withStepUp, PasslockError };
