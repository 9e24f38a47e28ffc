// Types of the passlock browser client, served at `{prefix}/client.d.ts`
// beside `{prefix}/client.js`. The module writes nothing to `globalThis`.

/** Machine codes of failures on the browser side; server codes (e.g. "step_up_required", "username_taken", "not_found", "invalid_name") come through as they are. */
export type ClientErrorCode =
  | "cancelled"
  | "credential_exists"
  | "passkeys_unavailable"
  | "unsupported"
  | "network"
  | "webauthn_failed"
  | "bad_response";

/** The error every function of this client throws. */
export class PasslockError extends Error {
  constructor(code: string, message: string, extra?: { status?: number; body?: unknown; cause?: unknown });
  readonly name: "PasslockError";
  /** The app's `error` code, the passkey service's error tag, or a {@link ClientErrorCode}. */
  readonly code: ClientErrorCode | (string & {});
  /** The HTTP status of a refused request. */
  readonly status?: number;
  /** The parsed error body of a refused request. */
  readonly body?: unknown;
}

/** What the browser offers for passkeys (`PublicKeyCredential.getClientCapabilities()`, or computed). */
export interface Capabilities {
  conditionalGet: boolean;
  conditionalCreate: boolean;
  hybridTransport: boolean;
  passkeyPlatformAuthenticator: boolean;
  userVerifyingPlatformAuthenticator: boolean;
  relatedOrigins: boolean;
  signalUnknownCredential: boolean;
  signalAllAcceptedCredentials: boolean;
  signalCurrentUserDetails: boolean;
  /** Further capabilities the browser reports, e.g. "extension:prf". */
  [capability: string]: boolean;
}

/** `{user_id, authenticator_id}`: the answer of a sign-up, sign-in or step-up. */
export interface SignedIn {
  user_id: string;
  authenticator_id: string;
}

/** How a session was verified. */
export type Method = "passkey" | (string & {});

/** `GET {prefix}/session`. */
export interface Session {
  user_id: string;
  authenticator_id: string | null;
  /** Epoch milliseconds. */
  authenticated_at: number;
  /** Epoch milliseconds of the last passkey ceremony. */
  verified_at: number | null;
  amr: Method[];
  /** A first factor (a password) is verified and a passkey must complete the sign-in. */
  second_factor_pending: boolean;
}

/** One entry of `GET {prefix}/passkeys`. */
export interface Passkey {
  authenticator_id: string;
  /** The user's name for it, else one derived from the authenticator. */
  name: string;
  /** The authenticator's make, from its AAGUID ("iCloud Keychain", "YubiKey 5"), when known. */
  authenticator_name: string | null;
  aaguid: string | null;
  /** It may be synced to other devices. */
  backup_eligible: boolean;
  /** It is synced (backed up). */
  backed_up: boolean;
  /** Epoch milliseconds. */
  created_at: number;
  /** Epoch milliseconds, null when never used to sign in. */
  last_used_at: number | null;
  /** It is the passkey of this session. */
  current: boolean;
}

export interface RegisterOptions {
  /** The new user's name, for a sign-up (signed out). */
  username?: string;
  /** A name for the new passkey; the server derives one when absent. */
  passkeyName?: string;
}

export interface AutofillOptions {
  /** Aborts the pending request (the promise then resolves to null). */
  signal?: AbortSignal;
}

export interface UpgradeOptions {
  /** A name for the new passkey; the server derives one when absent. */
  passkeyName?: string;
  /** Aborts the pending request (the promise then resolves to null). */
  signal?: AbortSignal;
}

/** A client for the passlock routes under one prefix. */
export interface PasslockClient {
  /** The routes' prefix, e.g. "/passkey". */
  readonly prefix: string;
  isSupported(): boolean;
  capabilities(): Promise<Capabilities>;
  /** Signs up (signed out, `username` required) or adds a passkey (signed in). */
  register(options?: RegisterOptions): Promise<SignedIn>;
  /** Signs in with any passkey of this site (usernameless); aborts a pending autofill request. */
  login(): Promise<SignedIn>;
  /** Verifies the signed-in user again with one of their passkeys. */
  stepUp(): Promise<SignedIn>;
  /**
   * Offers the site's passkeys in the autofill of the `autocomplete="username webauthn"` field and signs
   * in with the one picked. Null when the browser has no such autofill or the request was aborted (by
   * `signal`, or by `login`, `register` or `stepUp`).
   */
  autofill(options?: AutofillOptions): Promise<SignedIn | null>;
  /**
   * After a password sign-in: a passkey without a prompt (conditional create) where the browser offers it.
   * Null when it does not, declined, or the request was aborted (by `signal`, or by `login`, `register` or `stepUp`).
   */
  upgrade(options?: UpgradeOptions): Promise<SignedIn | null>;
  logout(): Promise<void>;
  logoutEverywhere(): Promise<void>;
  /** The session, or null when signed out. */
  session(): Promise<Session | null>;
  /** The signed-in user's passkeys; signals the accepted ones to the browser. */
  passkeys(): Promise<Passkey[]>;
  /** Renames a passkey (recent step-up needed: see `withStepUp`). */
  renamePasskey(authenticatorId: string, name: string): Promise<Passkey>;
  /** Deletes a passkey (recent step-up needed: see `withStepUp`); signals the browser. */
  deletePasskey(authenticatorId: string): Promise<void>;
  /** Runs `fn`, and on `step_up_required` steps up and runs it once more. */
  withStepUp<T>(fn: () => Promise<T>): Promise<T>;
}

/** A client for `prefix` (default: the directory this module was loaded from). */
export function createClient(options?: { prefix?: string }): PasslockClient;

/** A JSON request (same-origin cookies); a non-2xx answer throws a PasslockError. */
export function fetchJSON<T = any>(url: string, init?: { method?: string; body?: unknown }): Promise<T>;

/** Runs `fn`, and on `step_up_required` steps up (with `client`, default the module's) and runs it once more. */
export function withStepUp<T>(fn: () => Promise<T>, client?: PasslockClient): Promise<T>;

export function isSupported(): boolean;
export function capabilities(): Promise<Capabilities>;
export const register: PasslockClient["register"];
export const login: PasslockClient["login"];
export const stepUp: PasslockClient["stepUp"];
export const autofill: PasslockClient["autofill"];
export const upgrade: PasslockClient["upgrade"];
export const logout: PasslockClient["logout"];
export const logoutEverywhere: PasslockClient["logoutEverywhere"];
export const session: PasslockClient["session"];
export const passkeys: PasslockClient["passkeys"];
export const renamePasskey: PasslockClient["renamePasskey"];
export const deletePasskey: PasslockClient["deletePasskey"];

/** The module's client (prefix taken from the module's URL). */
declare const client: PasslockClient;
export default client;
