//! The client's newer browser features through the example page: autofill (conditional
//! mediation), the WebAuthn JSON helpers and their fallback, the Signal API, rename, the
//! taken-username refusal, a browser without passkeys, and the passkey upgrade after a
//! password sign-in.
//!
//! `recorder.js` is injected before the page's scripts and records every WebAuthn call the
//! page makes in `window.__passlock` (see its header); the tests read that log and the
//! virtual authenticator's credentials.

use std::time::Instant;

use serde_json::Value;

use crate::cdp::{CdpResult, Page, platform_authenticator};
use crate::scenario::{act, expect_credentials, sign_count, wait_passkeys, wait_text};
use crate::{STEP_TIMEOUT, Shots};

/// The recorder injected into every document (see the file's header).
pub(crate) const RECORDER: &str = include_str!("recorder.js");

/// Removes the browser's WebAuthn JSON helpers, so the client converts by hand.
pub(crate) const WITHOUT_JSON_HELPERS: &str = "delete PublicKeyCredential.parseCreationOptionsFromJSON; \
     delete PublicKeyCredential.parseRequestOptionsFromJSON; \
     delete PublicKeyCredential.prototype.toJSON;";

/// A browser that offers no passkey autofill (no conditional mediation). The virtual
/// authenticator answers a conditional request by itself as soon as it holds a passkey
/// (as if the person picked it at once), which would sign a user in whenever the sign-in
/// view shows; tests of the buttons run without autofill, and [`autofill`] tests it.
pub(crate) const WITHOUT_AUTOFILL: &str = "(() => { const P = window.PublicKeyCredential; \
     P.isConditionalMediationAvailable = async () => false; \
     const real = P.getClientCapabilities; \
     P.getClientCapabilities = async () => ({ ...(real ? await real.call(P) : {}), conditionalGet: false }); })();";

/// A browser without WebAuthn.
pub(crate) const WITHOUT_WEBAUTHN: &str = "delete window.PublicKeyCredential;";

const SIGNED_OUT: &str = "Signed out";
const SIGNED_IN: &str = "Signed in as ";

/// The recorded log.
fn log(page: &mut Page<'_>) -> CdpResult<Vec<Value>> {
    let log = page.eval("JSON.parse(JSON.stringify(window.__passlock))")?;
    Ok(log.as_array().cloned().unwrap_or_default())
}

/// The recorded entries of one kind.
fn entries(page: &mut Page<'_>, kind: &str) -> CdpResult<Vec<Value>> {
    Ok(log(page)?
        .into_iter()
        .filter(|e| e["kind"] == kind)
        .collect())
}

/// Polls the log until `check` finds what it wants, bounded by [`STEP_TIMEOUT`].
fn wait_log<T>(
    page: &mut Page<'_>,
    what: &str,
    check: impl Fn(&[Value]) -> Option<T>,
) -> CdpResult<T> {
    let started = Instant::now();
    loop {
        let log = log(page)?;
        if let Some(found) = check(&log) {
            return Ok(found);
        }
        if started.elapsed() >= STEP_TIMEOUT {
            return Err(format!(
                "timed out after {} s waiting for {what}; the WebAuthn log is {}",
                STEP_TIMEOUT.as_secs(),
                Value::Array(log)
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A credential id as CDP gives it (standard base64) in base64url, as the page sees it.
fn base64url(cdp_id: &Value) -> String {
    cdp_id
        .as_str()
        .unwrap_or_default()
        .replace('+', "-")
        .replace('/', "_")
        .trim_end_matches('=')
        .to_owned()
}

/// Opens the page and waits for it to show the signed-out sign-in view.
fn open(page: &mut Page<'_>, base_url: &str) -> CdpResult<()> {
    page.navigate(&format!("{base_url}/"), STEP_TIMEOUT)?;
    wait_text(page, "#status", "the page to show it is signed out", |t| {
        t == SIGNED_OUT
    })?;
    Ok(())
}

/// Signs up `username` with a passkey from the sign-up view; returns the user id.
fn sign_up(page: &mut Page<'_>, username: &str) -> CdpResult<String> {
    act(page, "#to-signup")?;
    page.fill("#new-username", username)?;
    act(page, "#signup")?;
    let status = wait_text(page, "#status", "sign-up to sign the user in", |t| {
        t.starts_with(SIGNED_IN)
    })?;
    Ok(status.trim_start_matches(SIGNED_IN).to_owned())
}

fn log_out(page: &mut Page<'_>) -> CdpResult<()> {
    act(page, "#logout")?;
    wait_text(page, "#status", "log-out", |t| t == SIGNED_OUT)?;
    Ok(())
}

/// The conditional `get` calls recorded so far.
fn conditional_gets(log: &[Value]) -> Vec<&Value> {
    log.iter()
        .filter(|e| e["kind"] == "get" && e["mediation"] == "conditional")
        .collect()
}

/// Autofill: on the sign-in view the page starts one conditional request for a discoverable
/// credential (no allow list, an abort signal, user verification required) and shows no
/// error when nothing is picked; when the virtual authenticator answers it, the user is
/// signed in with one signature; a button ceremony aborts a pending one without an error.
pub(crate) fn autofill(
    page: &mut Page<'_>,
    base_url: &str,
    authenticator: &str,
    shots: &mut Shots,
) -> CdpResult<()> {
    page.add_init_script(RECORDER)?;
    open(page, base_url)?;
    // No passkey yet: the browser ends the request with nothing picked.
    let first = wait_log(page, "the first conditional request to end", |log| {
        let gets = conditional_gets(log);
        (gets.len() == 1 && gets[0]["outcome"] != "pending").then(|| gets[0].clone())
    })?;
    let options = &first["options"];
    if first["signal"] != true
        || options["allowCredentials"] != 0
        || options["challengeIsBuffer"] != true
        || options["rpId"] != "localhost"
        || options["userVerification"] != "required"
    {
        return Err(format!(
            "the conditional request is not a discoverable one with an abort signal: {first}"
        ));
    }
    let message = page.text("#message")?.unwrap_or_default();
    if !message.is_empty() {
        return Err(format!(
            "an autofill with nothing picked showed {message:?}"
        ));
    }
    shots.take(page, "autofill-nothing-picked")?;

    let user_id = sign_up(page, "autofill-user")?;
    expect_credentials(page, authenticator, 1, "after sign-up")?;
    let signatures = sign_count(page, authenticator)?;
    let requests = log(page)?.len();

    // Signed out, the sign-in view starts autofill again, and the virtual authenticator
    // answers it (a person picking the passkey from the username field).
    act(page, "#logout")?;
    let expected = format!("{SIGNED_IN}{user_id}");
    wait_text(page, "#message", "the autofill sign-in", |t| t == expected)?;
    wait_text(page, "#status", "the autofill sign-in", |t| t == expected)?;
    let after: Vec<Value> = log(page)?.into_iter().skip(requests).collect();
    let gets: Vec<&Value> = after.iter().filter(|e| e["kind"] == "get").collect();
    if gets.len() != 1 || gets[0]["mediation"] != "conditional" || gets[0]["outcome"] != "resolved"
    {
        return Err(format!(
            "expected exactly one resolved conditional request after log-out: {after:?}"
        ));
    }
    if sign_count(page, authenticator)? != signatures + 1 {
        return Err("the autofill sign-in did not sign exactly once".to_owned());
    }
    shots.take(page, "autofill-signed-in")?;

    // While the authenticator waits for the person (no presence simulated), the request
    // stays pending; the sign-in button aborts it and starts its own, which then waits for
    // the person too. (Chromium may end that one when the authenticator changes, so the
    // test stops here: the button sign-in itself is the journeys' business.)
    page.call(
        "WebAuthn.setAutomaticPresenceSimulation",
        serde_json::json!({ "authenticatorId": authenticator, "enabled": false }),
    )?;
    let requests = log(page)?.len();
    act(page, "#logout")?;
    wait_text(page, "#status", "log-out", |t| t == SIGNED_OUT)?;
    wait_log(page, "a pending conditional request", |log| {
        let later = &log[requests.min(log.len())..];
        let gets = conditional_gets(later);
        (gets.len() == 1 && gets[0]["outcome"] == "pending").then_some(())
    })?;
    act(page, "#login")?;
    let (aborted, button) = wait_log(page, "the abort and the button's request", |log| {
        let later = &log[requests.min(log.len())..];
        let gets: Vec<&Value> = later.iter().filter(|e| e["kind"] == "get").collect();
        (gets.len() == 2 && gets[0]["outcome"] != "pending")
            .then(|| (gets[0].clone(), gets[1].clone()))
    })?;
    if aborted["mediation"] != "conditional" || aborted["outcome"] != "rejected:AbortError" {
        return Err(format!("the autofill request was not aborted: {aborted}"));
    }
    if !button["mediation"].is_null() || button["outcome"] != "pending" {
        return Err(format!(
            "the button's request is not a modal pending one: {button}"
        ));
    }
    let message = page.text("#message")?.unwrap_or_default();
    if !message.is_empty() {
        return Err(format!("the aborted autofill showed {message:?}"));
    }
    shots.take(page, "autofill-aborted")?;
    Ok(())
}

/// The JSON helpers: with the browser's helpers the client parses options and serializes
/// credentials through them; without them (deleted before the page loads) the hand
/// conversion signs up and signs in just the same.
pub(crate) fn json_helpers(
    page: &mut Page<'_>,
    base_url: &str,
    authenticator: &str,
    shots: &mut Shots,
    native: bool,
) -> CdpResult<()> {
    page.add_init_script(RECORDER)?;
    page.add_init_script(WITHOUT_AUTOFILL)?;
    if !native {
        page.add_init_script(WITHOUT_JSON_HELPERS)?;
    }
    open(page, base_url)?;
    let present = page.eval(
        "[typeof PublicKeyCredential.parseCreationOptionsFromJSON, \
          typeof PublicKeyCredential.parseRequestOptionsFromJSON, \
          typeof PublicKeyCredential.prototype.toJSON]",
    )?;
    let expected = if native { "function" } else { "undefined" };
    if present != serde_json::json!([expected, expected, expected]) {
        return Err(format!(
            "the JSON helpers are {present}, expected all {expected}"
        ));
    }
    // The page imported client.js and ran it: no new global besides the recorder's own.
    let added = page.eval(
        "Object.getOwnPropertyNames(window).filter((n) => !window.__passlockGlobals.includes(n))",
    )?;
    if added != serde_json::json!(["__passlock", "__passlockGlobals"]) {
        return Err(format!("new globals after loading the page: {added}"));
    }
    let user_id = sign_up(
        page,
        if native {
            "json-native"
        } else {
            "json-by-hand"
        },
    )?;
    expect_credentials(page, authenticator, 1, "after sign-up")?;
    log_out(page)?;
    act(page, "#login")?;
    wait_text(page, "#status", "log-in", |t| {
        t == format!("{SIGNED_IN}{user_id}")
    })?;
    shots.take(page, "signed-in")?;
    let kinds: Vec<String> = log(page)?
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_owned))
        .filter(|k| k.starts_with("parse") || k == "toJSON")
        .collect();
    let want: Vec<String> = if native {
        [
            "parseCreationOptionsFromJSON",
            "toJSON",
            "parseRequestOptionsFromJSON",
            "toJSON",
        ]
        .map(str::to_owned)
        .to_vec()
    } else {
        Vec::new()
    };
    if kinds != want {
        return Err(format!(
            "the JSON helpers called were {kinds:?}, expected {want:?}"
        ));
    }
    // Both paths hand the browser real buffers.
    let calls: Vec<Value> = log(page)?
        .into_iter()
        .filter(|e| (e["kind"] == "get" || e["kind"] == "create") && e["mediation"].is_null())
        .collect();
    if calls.len() != 2
        || calls
            .iter()
            .any(|c| c["options"]["challengeIsBuffer"] != true)
    {
        return Err(format!(
            "expected one create and one get with buffer challenges: {calls:?}"
        ));
    }
    Ok(())
}

/// Rename through the page: the new name shows in the list and survives a reload; an empty
/// name is refused with `invalid_name` and changes nothing; the browser is told the user's
/// current details (`signalCurrentUserDetails`) after the rename.
pub(crate) fn rename(
    page: &mut Page<'_>,
    base_url: &str,
    _authenticator: &str,
    shots: &mut Shots,
) -> CdpResult<()> {
    page.add_init_script(RECORDER)?;
    page.add_init_script(WITHOUT_AUTOFILL)?;
    open(page, base_url)?;
    sign_up(page, "renamer")?;
    let ids = wait_passkeys(page, 1, "the new passkey")?;
    let item = format!(
        "#passkeys li[data-authenticator-id={}]",
        serde_json::to_string(&ids[0]).map_err(|e| e.to_string())?
    );
    let created = entries(page, "create")?;
    let user_handle = created
        .first()
        .map(|c| c["options"]["userId"].clone())
        .ok_or("no create call recorded")?;

    act(page, &format!("{item} button.rename"))?;
    page.fill(&format!("{item} .rename-input"), "Work laptop")?;
    act(page, &format!("{item} .rename-save"))?;
    wait_text(page, &format!("{item} .name"), "the new name", |t| {
        t == "Work laptop"
    })?;
    shots.take(page, "renamed")?;
    let details = wait_log(page, "signalCurrentUserDetails", |log| {
        log.iter()
            .find(|e| e["kind"] == "signalCurrentUserDetails")
            .cloned()
    })?;
    let want = serde_json::json!({
        "rpId": "localhost",
        "userId": user_handle,
        "name": "renamer",
        "displayName": "renamer",
    });
    if details["details"] != want {
        return Err(format!(
            "signalCurrentUserDetails got {}, expected {want}",
            details["details"]
        ));
    }

    // An empty name is refused and changes nothing.
    act(page, &format!("{item} button.rename"))?;
    page.fill(&format!("{item} .rename-input"), "   ")?;
    act(page, &format!("{item} .rename-save"))?;
    let refused = wait_text(page, "#message", "the empty name to be refused", |t| {
        !t.is_empty()
    })?;
    if !(refused.starts_with("Error:") && refused.ends_with("(invalid_name)")) {
        return Err(format!("an empty name was not refused: {refused:?}"));
    }

    // The name is the server's: a reload shows it.
    page.navigate(&format!("{base_url}/"), STEP_TIMEOUT)?;
    wait_text(
        page,
        &format!("{item} .name"),
        "the name after a reload",
        |t| t == "Work laptop",
    )?;
    Ok(())
}

/// The Signal API at the right moments, with its real effect on Chromium's virtual
/// authenticators: the list tells the browser the accepted passkeys (after sign-up: the one;
/// after adding a second: both; after deleting it: the first alone, and the browser then
/// removes the deleted one from the device in the tab); a passkey deleted from another
/// device is refused at sign-in, and the browser, told it is unknown, removes it too.
pub(crate) fn signals(
    page: &mut Page<'_>,
    base_url: &str,
    authenticator: &str,
    shots: &mut Shots,
) -> CdpResult<()> {
    page.add_init_script(RECORDER)?;
    page.add_init_script(WITHOUT_AUTOFILL)?;
    open(page, base_url)?;
    sign_up(page, "signaller")?;
    let first = wait_passkeys(page, 1, "the new passkey")?;
    let device_a = page.authenticator_credentials(authenticator)?;
    let first_credential = base64url(&device_a[0]["credentialId"]);
    if first[0] != first_credential {
        return Err(format!(
            "the embedded provider's authenticator id {} is not the credential id {first_credential}",
            first[0]
        ));
    }
    let user_handle = entries(page, "create")?[0]["options"]["userId"].clone();
    let accepted = |ids: &[&str]| {
        serde_json::json!({
            "rpId": "localhost",
            "userId": user_handle,
            "allAcceptedCredentialIds": ids,
        })
    };
    let want = accepted(&[&first_credential]);
    wait_log(page, "signalAllAcceptedCredentials after sign-up", |log| {
        log.iter()
            .any(|e| e["kind"] == "signalAllAcceptedCredentials" && e["details"] == want)
            .then_some(())
    })?;

    // A second passkey on device B, then a third on device C.
    page.remove_virtual_authenticator(authenticator)?;
    let b = page.add_virtual_authenticator(platform_authenticator())?;
    act(page, "#add-passkey")?;
    let two = wait_passkeys(page, 2, "two passkeys")?;
    let second = two
        .iter()
        .find(|id| **id != first_credential)
        .cloned()
        .ok_or("no second passkey")?;
    let both = [
        accepted(&[&first_credential, &second]),
        accepted(&[&second, &first_credential]),
    ];
    wait_log(page, "signalAllAcceptedCredentials with both", |log| {
        log.iter()
            .any(|e| e["kind"] == "signalAllAcceptedCredentials" && both.contains(&e["details"]))
            .then_some(())
    })?;
    let device_b = page.authenticator_credentials(&b)?;
    expect_credentials(page, &b, 1, "on device B")?;
    page.remove_virtual_authenticator(&b)?;
    let c = page.add_virtual_authenticator(platform_authenticator())?;
    act(page, "#add-passkey")?;
    let three = wait_passkeys(page, 3, "three passkeys")?;
    let third = three
        .iter()
        .find(|id| **id != first_credential && **id != second)
        .cloned()
        .ok_or("no third passkey")?;

    // Deleting the third on device C: the accepted list drops it, and the browser removes it
    // from device C.
    let before = entries(page, "signalAllAcceptedCredentials")?.len();
    let selector = |id: &str| -> CdpResult<String> {
        Ok(format!(
            "#passkeys li[data-authenticator-id={}] button.delete",
            serde_json::to_string(id).map_err(|e| e.to_string())?
        ))
    };
    act(page, &selector(&third)?)?;
    wait_passkeys(page, 2, "two passkeys after a delete")?;
    wait_log(
        page,
        "signalAllAcceptedCredentials after the delete",
        |log| {
            let after: Vec<&Value> = log
                .iter()
                .filter(|e| e["kind"] == "signalAllAcceptedCredentials")
                .skip(before)
                .collect();
            (!after.is_empty() && after.iter().all(|e| both.contains(&e["details"]))).then_some(())
        },
    )?;
    let started = Instant::now();
    while !page.authenticator_credentials(&c)?.is_empty() {
        if started.elapsed() >= STEP_TIMEOUT {
            return Err("the browser kept the deleted passkey on device C".to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    shots.take(page, "deleted-here")?;

    // Deleting the second while device B is elsewhere: B still holds it.
    page.remove_virtual_authenticator(&c)?;
    let a = page.add_virtual_authenticator(platform_authenticator())?;
    for credential in &device_a {
        page.add_credential(&a, credential)?;
    }
    act(page, &selector(&second)?)?;
    wait_passkeys(page, 1, "one passkey after deleting the second")?;
    expect_credentials(
        page,
        &a,
        1,
        "on device A after deleting another device's passkey",
    )?;
    if !entries(page, "signalUnknownCredential")?.is_empty() {
        return Err("signalUnknownCredential was called before any refused sign-in".to_owned());
    }

    // Device B signs in with the deleted passkey: refused, and the browser told.
    log_out(page)?;
    page.remove_virtual_authenticator(&a)?;
    let b = page.add_virtual_authenticator(platform_authenticator())?;
    for credential in &device_b {
        page.add_credential(&b, credential)?;
    }
    act(page, "#login")?;
    let refused = wait_text(page, "#message", "the deleted passkey refused", |t| {
        !t.is_empty()
    })?;
    if !(refused.starts_with("Error:") && refused.ends_with("(PasskeyNotFound)")) {
        return Err(format!(
            "the deleted passkey was not refused as unknown: {refused:?}"
        ));
    }
    let unknown = entries(page, "signalUnknownCredential")?;
    let want_unknown = serde_json::json!({ "rpId": "localhost", "credentialId": second });
    if unknown.len() != 1 || unknown[0]["details"] != want_unknown {
        return Err(format!(
            "signalUnknownCredential calls {unknown:?}, expected one with {want_unknown}"
        ));
    }
    let started = Instant::now();
    while !page.authenticator_credentials(&b)?.is_empty() {
        if started.elapsed() >= STEP_TIMEOUT {
            return Err("the browser kept the unknown passkey on device B".to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    shots.take(page, "unknown-signalled")?;

    // Device A's passkey still signs in, and signals nothing more.
    page.remove_virtual_authenticator(&b)?;
    let a = page.add_virtual_authenticator(platform_authenticator())?;
    for credential in &device_a {
        page.add_credential(&a, credential)?;
    }
    act(page, "#login")?;
    wait_text(page, "#status", "log-in with the first passkey", |t| {
        t.starts_with(SIGNED_IN)
    })?;
    if entries(page, "signalUnknownCredential")?.len() != 1 {
        return Err("a successful sign-in signalled an unknown credential".to_owned());
    }
    Ok(())
}

/// A taken username is refused before any ceremony: `409 username_taken` on the page and
/// no credential on the (new) virtual authenticator, no `create` call at all.
pub(crate) fn taken_username(
    page: &mut Page<'_>,
    base_url: &str,
    authenticator: &str,
    shots: &mut Shots,
) -> CdpResult<()> {
    page.add_init_script(RECORDER)?;
    page.add_init_script(WITHOUT_AUTOFILL)?;
    open(page, base_url)?;
    sign_up(page, "taken")?;
    log_out(page)?;
    page.remove_virtual_authenticator(authenticator)?;
    let other = page.add_virtual_authenticator(platform_authenticator())?;
    let creates = entries(page, "create")?.len();
    act(page, "#to-signup")?;
    page.fill("#new-username", "taken")?;
    act(page, "#signup")?;
    let refused = wait_text(page, "#message", "the taken username refused", |t| {
        !t.is_empty()
    })?;
    if !(refused.starts_with("Error:") && refused.ends_with("(username_taken)")) {
        return Err(format!("the taken username was not refused: {refused:?}"));
    }
    expect_credentials(page, &other, 0, "after a refused sign-up")?;
    if entries(page, "create")?.len() != creates {
        return Err("the refused sign-up still asked the browser for a passkey".to_owned());
    }
    let status = page.text("#status")?.unwrap_or_default();
    if status != SIGNED_OUT {
        return Err(format!("a refused sign-up signed in: {status:?}"));
    }
    shots.take(page, "refused")?;
    Ok(())
}

/// A browser without WebAuthn: the page says so, hides the passkey buttons, a passkey
/// sign-in fails with `passkeys_unavailable`, and the password still works.
pub(crate) fn without_passkeys(
    page: &mut Page<'_>,
    base_url: &str,
    _authenticator: &str,
    shots: &mut Shots,
) -> CdpResult<()> {
    page.add_init_script(WITHOUT_WEBAUTHN)?;
    open(page, base_url)?;
    let shown = page.eval(
        "[document.querySelector('#unsupported').hidden, document.querySelector('#login').closest('[hidden]') !== null]",
    )?;
    if shown != serde_json::json!([false, true]) {
        return Err(format!(
            "[#unsupported hidden, #login hidden] is {shown}, expected [false, true]"
        ));
    }
    shots.take(page, "unsupported")?;
    act(page, "#login")?;
    let refused = wait_text(page, "#message", "the passkey sign-in refused", |t| {
        !t.is_empty()
    })?;
    if !(refused.starts_with("Error:") && refused.ends_with("(passkeys_unavailable)")) {
        return Err(format!("expected passkeys_unavailable, got {refused:?}"));
    }
    act(page, "#to-signup")?;
    page.fill("#new-username", "no-passkeys")?;
    page.fill("#new-password", "correct horse battery")?;
    act(page, "#password-signup")?;
    wait_text(page, "#status", "password sign-up", |t| {
        t.starts_with(SIGNED_IN)
    })?;
    Ok(())
}

/// After a password sign-in (no passkey yet), the page asks for a passkey without a prompt
/// (`create` with `mediation: "conditional"`) exactly when the browser reports
/// `conditionalCreate`; `supported` forces the capability on or off.
pub(crate) fn upgrade(
    page: &mut Page<'_>,
    base_url: &str,
    authenticator: &str,
    shots: &mut Shots,
    supported: bool,
) -> CdpResult<()> {
    page.add_init_script(RECORDER)?;
    page.add_init_script(WITHOUT_AUTOFILL)?;
    page.add_init_script(&format!(
        "(() => {{ const P = window.PublicKeyCredential; const real = P.getClientCapabilities; \
         P.getClientCapabilities = async () => ({{ ...(real ? await real.call(P) : {{}}), conditionalCreate: {supported} }}); }})();"
    ))?;
    open(page, base_url)?;
    act(page, "#to-signup")?;
    page.fill("#new-username", "upgrader")?;
    page.fill("#new-password", "correct horse battery")?;
    act(page, "#password-signup")?;
    let status = wait_text(page, "#status", "password sign-up", |t| {
        t.starts_with(SIGNED_IN)
    })?;
    let user_id = status.trim_start_matches(SIGNED_IN).to_owned();
    log_out(page)?;
    page.fill("#username", "upgrader")?;
    page.fill("#password", "correct horse battery")?;
    act(page, "#password-login")?;
    wait_text(page, "#status", "password sign-in", |t| {
        t == format!("{SIGNED_IN}{user_id}")
    })?;
    if supported {
        // Headless Chromium keeps a conditional create open (its password manager filled
        // nothing), which is what a person who ignores the offer sees: the page signed in
        // and showed no error.
        let create = wait_log(page, "a conditional create", |log| {
            log.iter().find(|e| e["kind"] == "create").cloned()
        })?;
        if create["mediation"] != "conditional"
            || create["signal"] != true
            || create["outcome"] != "pending"
            || create["options"]["userName"] != "upgrader"
        {
            return Err(format!("the upgrade's create call is {create}"));
        }
        let message = page.text("#message")?.unwrap_or_default();
        if message != format!("{SIGNED_IN}{user_id}") {
            return Err(format!("the page shows {message:?} during the upgrade"));
        }
        // Adding a passkey from the button aborts the background request and creates one.
        act(page, "#add-passkey")?;
        wait_passkeys(page, 1, "the passkey added by the button")?;
        expect_credentials(page, authenticator, 1, "after the button")?;
        let creates = entries(page, "create")?;
        if creates.len() != 2
            || creates[0]["outcome"] != "rejected:AbortError"
            || !creates[1]["mediation"].is_null()
            || creates[1]["outcome"] != "resolved"
        {
            return Err(format!(
                "expected the aborted conditional create and the button's create: {creates:?}"
            ));
        }
    } else {
        // The page marks the account view once the upgrade has decided.
        page.wait_until(
            "the upgrade to decide",
            "document.querySelector('#view-account').dataset.upgrade === 'none'",
            STEP_TIMEOUT,
        )?;
        if !entries(page, "create")?.is_empty() {
            return Err("the page asked for a passkey without conditionalCreate".to_owned());
        }
        expect_credentials(page, authenticator, 0, "without conditional create")?;
    }
    shots.take(page, "upgraded")?;
    Ok(())
}

/// The README's screenshot: the account view after a sign-up, with the sign-up passkey
/// renamed and a second, named one from a security key, at 1000x700. Saved among the
/// test's screenshots as `account.png`, and also to `$PASSLOCK_SCREENSHOT` when set
/// (`scripts/screenshot` sets it to `docs/screenshot.png`).
pub(crate) fn readme_screenshot(
    page: &mut Page<'_>,
    base_url: &str,
    authenticator: &str,
    shots: &mut Shots,
) -> CdpResult<()> {
    page.add_init_script(WITHOUT_AUTOFILL)?;
    page.set_viewport(1000, 700)?;
    // The sign-up passkey is a synced one (backup eligible and backed up).
    page.remove_virtual_authenticator(authenticator)?;
    let mut synced = platform_authenticator();
    synced["defaultBackupEligibility"] = Value::Bool(true);
    synced["defaultBackupState"] = Value::Bool(true);
    let authenticator = &page.add_virtual_authenticator(synced)?;
    open(page, base_url)?;
    sign_up(page, "alice")?;
    let ids = wait_passkeys(page, 1, "the sign-up passkey")?;
    let item = format!(
        "#passkeys li[data-authenticator-id={}]",
        serde_json::to_string(&ids[0]).map_err(|e| e.to_string())?
    );
    act(page, &format!("{item} button.rename"))?;
    page.fill(&format!("{item} .rename-input"), "MacBook Pro")?;
    act(page, &format!("{item} .rename-save"))?;
    wait_text(page, &format!("{item} .name"), "the renamed passkey", |t| {
        t == "MacBook Pro"
    })?;

    // A second passkey on a security key, named when it is added.
    let saved = page.authenticator_credentials(authenticator)?;
    page.remove_virtual_authenticator(authenticator)?;
    let key = page.add_virtual_authenticator(serde_json::json!({
        "protocol": "ctap2",
        "transport": "usb",
        "hasResidentKey": true,
        "hasUserVerification": true,
        "isUserVerified": true,
        "automaticPresenceSimulation": true,
    }))?;
    page.fill("#passkey-name", "Security key")?;
    act(page, "#add-passkey")?;
    wait_passkeys(page, 2, "the second passkey")?;
    wait_text(page, "#message", "the passkey added", |t| {
        t == "Passkey added"
    })?;
    page.remove_virtual_authenticator(&key)?;
    let device = page.add_virtual_authenticator(platform_authenticator())?;
    for credential in &saved {
        page.add_credential(&device, credential)?;
    }
    let names = page.eval(
        "Array.from(document.querySelectorAll('#passkeys li .name')).map((n) => n.textContent)",
    )?;
    if names != serde_json::json!(["MacBook Pro", "Security key"]) {
        return Err(format!("the account view lists {names}"));
    }
    let badges = page.eval(
        "Array.from(document.querySelectorAll('#passkeys li')).map((li) => li.querySelector('.badge').textContent)",
    )?;
    if badges != serde_json::json!(["Synced", "This device only"]) {
        return Err(format!("the account view's badges are {badges}"));
    }
    page.eval(
        "window.scrollTo(0, 0); document.activeElement && document.activeElement.blur(); true",
    )?;
    let path = shots.dir.join("account.png");
    page.screenshot(&path)?;
    if let Some(out) = std::env::var_os("PASSLOCK_SCREENSHOT") {
        std::fs::copy(&path, &out).map_err(|e| format!("cannot copy the screenshot: {e}"))?;
    }
    Ok(())
}

/// Holds the answers of `GET .../passkeys` while `window.__hold` is set (the request is sent
/// at once, so its list is as old as the request); `window.__release()` lets them through.
const HOLD_PASSKEY_LISTS: &str = "(() => { const f = window.fetch; window.__hold = false; window.__held = []; \
     window.fetch = (u, o) => { const answer = f(u, o); \
       if (window.__hold && String(u).endsWith('/passkeys') && (!o || !o.method || o.method === 'GET')) \
         return new Promise((resolve) => window.__held.push(() => resolve(answer))); \
       return answer; }; \
     window.__release = () => { window.__hold = false; const held = window.__held.splice(0); \
       held.forEach((r) => r()); return held.length; }; })();";

/// A passkey list fetched before a registration is never signalled as the accepted list:
/// the step-up's list (one passkey) arrives after a second passkey was added, and the
/// browser keeps the new passkey (a stale `signalAllAcceptedCredentials` would remove it).
pub(crate) fn stale_list(
    page: &mut Page<'_>,
    base_url: &str,
    authenticator: &str,
    shots: &mut Shots,
) -> CdpResult<()> {
    page.add_init_script(RECORDER)?;
    page.add_init_script(WITHOUT_AUTOFILL)?;
    page.add_init_script(HOLD_PASSKEY_LISTS)?;
    open(page, base_url)?;
    sign_up(page, "stale")?;
    let first = wait_passkeys(page, 1, "the new passkey")?;
    let refreshes = |page: &mut Page<'_>| -> CdpResult<u64> {
        Ok(page
            .eval("Number(document.body.dataset.refreshes || 0)")?
            .as_u64()
            .unwrap_or_default())
    };

    // The step-up's list is fetched now and held.
    page.eval("window.__hold = true")?;
    act(page, "#stepup")?;
    page.wait_until(
        "the step-up's passkey list to be held",
        "window.__held.length === 1",
        STEP_TIMEOUT,
    )?;
    page.eval("window.__hold = false")?;

    // Meanwhile a second passkey on another device.
    page.remove_virtual_authenticator(authenticator)?;
    let other = page.add_virtual_authenticator(platform_authenticator())?;
    act(page, "#add-passkey")?;
    wait_passkeys(page, 2, "two passkeys")?;
    expect_credentials(page, &other, 1, "after adding a passkey")?;
    let signals = entries(page, "signalAllAcceptedCredentials")?.len();
    let done = refreshes(page)?;

    // The stale list arrives: the page ignores it, and nothing is signalled.
    let released = page.eval("window.__release()")?;
    if released != 1 {
        return Err(format!("released {released} held lists, expected 1"));
    }
    page.wait_until(
        "the stale refresh to finish",
        &format!("Number(document.body.dataset.refreshes || 0) > {done}"),
        STEP_TIMEOUT,
    )?;
    let later: Vec<Value> = entries(page, "signalAllAcceptedCredentials")?
        .into_iter()
        .skip(signals)
        .collect();
    if !later.is_empty() {
        return Err(format!("the stale list was signalled: {later:?}"));
    }
    let shown = wait_passkeys(page, 2, "the list to stay at two passkeys")?;
    if !shown.contains(&first[0]) {
        return Err(format!("the list lost the first passkey: {shown:?}"));
    }
    expect_credentials(page, &other, 1, "after the stale list arrived")?;
    shots.take(page, "stale-list-ignored")?;
    Ok(())
}
