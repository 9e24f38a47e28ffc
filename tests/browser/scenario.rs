//! The passkey journey through an example app's page, as a person would click it.
//!
//! It relies only on the page contract shared by the example apps (element ids below), so
//! every example (axum, actix) runs the same journey against its own base URL.
//!
//! Page contract: views are `section[data-view]` (`signin`, `signup`, `mfa`, `account`),
//! one shown at a time. The sign-in view has `#username` (the autofill field), `#password`,
//! buttons `#login`, `#password-login` and `#to-signup`; the sign-up view `#new-username`,
//! `#new-password`, buttons `#signup`, `#password-signup`; the account view `#passkeys` (a
//! list whose items carry `data-authenticator-id`, a `.name`, a `.badge`, a `button.rename`
//! opening a `.rename-input` with a `.rename-save`, and a `button.delete`), `#passkey-name`,
//! buttons `#add-passkey`, `#stepup`, `#sensitive`, `#logout` and `#sensitive-result`
//! ("Sensitive action done"). Everywhere: `#status` ("Signed in as <user_id>" or "Signed
//! out"), `#message` (last result, errors start with "Error:" and end with "(<code>)"),
//! `#unsupported` (shown on a browser without passkeys). `<body data-refreshes>` counts
//! the page's finished refreshes and `#view-account[data-upgrade]` tells how the passkey
//! upgrade after a password sign-in went (`pending`, `none`, `added`, `failed`).
//!
//! The password journey ([`password_then_passkey_journey`]) also needs `#mfa-verify` inside
//! the `#mfa` view (hidden unless a passkey is pending), and `#status` "Password verified for
//! <user_id>; verify with your passkey" for a partial session.

use std::time::{Duration, Instant};

use crate::cdp::{CdpResult, Page, platform_authenticator};
use crate::features::WITHOUT_AUTOFILL;
use crate::{STEP_TIMEOUT, Shots};

const SIGNED_OUT: &str = "Signed out";
const SIGNED_IN: &str = "Signed in as ";
const SENSITIVE_DONE: &str = "Sensitive action done";

/// Sign up, log out, log in without a username, run the sensitive action, step up, add a
/// second passkey from another device, delete it, check it no longer signs in while the first
/// still does, log out; checks the page and the virtual authenticators after every step and
/// screenshots it.
pub(crate) fn passkey_journey(
    page: &mut Page<'_>,
    base_url: &str,
    authenticator: &str,
    shots: &mut Shots,
) -> CdpResult<()> {
    page.add_init_script(WITHOUT_AUTOFILL)?;
    page.navigate(&format!("{base_url}/"), STEP_TIMEOUT)?;
    wait_text(page, "#status", "the page to show it is signed out", |t| {
        t == SIGNED_OUT
    })?;
    shots.take(page, "signed-out")?;

    // Sign up: a new user with a new passkey, from the sign-up view.
    act(page, "#to-signup")?;
    page.fill("#new-username", "alice")?;
    act(page, "#signup")?;
    let status = wait_text(page, "#status", "sign-up to sign the user in", |t| {
        t.starts_with(SIGNED_IN)
    })?;
    let user_id = status.trim_start_matches(SIGNED_IN).to_owned();
    if user_id.is_empty() {
        return Err(format!("#status names no user after sign-up: {status:?}"));
    }
    expect_credentials(page, authenticator, 1, "after sign-up")?;
    let first = wait_passkeys(page, 1, "the new passkey in the list")?;
    shots.take(page, "signed-up")?;

    act(page, "#logout")?;
    wait_text(page, "#status", "log-out", |t| t == SIGNED_OUT)?;
    shots.take(page, "logged-out")?;

    // Usernameless log-in: the authenticator picks the resident key.
    page.fill("#username", "")?;
    act(page, "#login")?;
    let expected = format!("{SIGNED_IN}{user_id}");
    wait_text(page, "#status", "log-in as the same user", |t| {
        t == expected
    })?;
    expect_credentials(page, authenticator, 1, "after log-in")?;
    shots.take(page, "logged-in")?;

    // The log-in is fresh, so the sensitive action succeeds without a step-up: the
    // authenticator signs nothing (its signature counter stays put).
    let signatures = sign_count(page, authenticator)?;
    page.eval("document.querySelector('#sensitive-result').textContent = ''")?;
    act(page, "#sensitive")?;
    wait_text(page, "#sensitive-result", "the sensitive action", |t| {
        t == SENSITIVE_DONE
    })?;
    let after = sign_count(page, authenticator)?;
    if after != signatures {
        return Err(format!(
            "the sensitive action right after log-in ran a ceremony (signature counter {signatures} -> {after})"
        ));
    }
    shots.take(page, "sensitive-done")?;

    // An explicit step-up is one more assertion.
    act(page, "#stepup")?;
    let message = wait_text(page, "#message", "the step-up's result", |t| !t.is_empty())?;
    if message.starts_with("Error:") {
        return Err(format!("the step-up failed: {message}"));
    }
    wait_text(page, "#status", "the user to stay signed in", |t| {
        t == expected
    })?;
    let stepped = sign_count(page, authenticator)?;
    if stepped != after + 1 {
        return Err(format!(
            "the step-up did not sign exactly once (signature counter {after} -> {stepped})"
        ));
    }
    shots.take(page, "stepped-up")?;

    // A second passkey for the same user, on another device: the page excludes the passkey
    // this authenticator already holds, so (as a person would) switch to a new authenticator.
    let saved = page.authenticator_credentials(authenticator)?;
    page.remove_virtual_authenticator(authenticator)?;
    let other = page.add_virtual_authenticator(platform_authenticator())?;
    act(page, "#add-passkey")?;
    let both = wait_passkeys(page, 2, "two passkeys in the list")?;
    if !both.contains(&first[0]) {
        return Err(format!(
            "the first passkey {} is missing after adding one: {both:?}",
            first[0]
        ));
    }
    expect_credentials(
        page,
        &other,
        1,
        "on the second device after adding a passkey",
    )?;
    shots.take(page, "second-passkey")?;

    // Delete the new one (the session's own passkey may be protected); the first stays.
    let deleted = both
        .iter()
        .find(|id| **id != first[0])
        .cloned()
        .ok_or_else(|| format!("no new passkey among {both:?}"))?;
    let selector = format!(
        "#passkeys li[data-authenticator-id={}] button.delete",
        serde_json::to_string(&deleted).map_err(|e| e.to_string())?
    );
    act(page, &selector)?;
    let left = wait_passkeys(page, 1, "one passkey left after deleting one")?;
    if left != first {
        return Err(format!(
            "after deleting {deleted}, #passkeys lists {left:?}, expected {first:?}"
        ));
    }
    shots.take(page, "passkey-deleted")?;

    act(page, "#logout")?;
    wait_text(page, "#status", "log-out after deleting a passkey", |t| {
        t == SIGNED_OUT
    })?;

    // The deleted passkey, still on the second device, no longer signs in.
    act(page, "#login")?;
    let refused = wait_text(
        page,
        "#message",
        "log-in with the deleted passkey to fail",
        |t| !t.is_empty(),
    )?;
    if !refused.starts_with("Error:") {
        return Err(format!(
            "the deleted passkey still signs in: #message is {refused:?}"
        ));
    }
    let status = page.text("#status")?.unwrap_or_default();
    if status != SIGNED_OUT {
        return Err(format!(
            "signed in with a deleted passkey: #status is {status:?}"
        ));
    }
    shots.take(page, "deleted-passkey-refused")?;

    // Back on the first device, the remaining passkey signs in.
    page.remove_virtual_authenticator(&other)?;
    let first_device = page.add_virtual_authenticator(platform_authenticator())?;
    for credential in &saved {
        page.add_credential(&first_device, credential)?;
    }
    act(page, "#login")?;
    wait_text(page, "#status", "log-in with the remaining passkey", |t| {
        t == expected
    })?;
    shots.take(page, "logged-in-again")?;

    act(page, "#logout")?;
    wait_text(page, "#status", "the final log-out", |t| t == SIGNED_OUT)?;

    // Signed out, the server refuses the sensitive action.
    page.eval("document.querySelector('#sensitive-result').textContent = ''")?;
    act(page, "#sensitive")?;
    wait_text(
        page,
        "#message",
        "the signed-out sensitive action to fail",
        |t| t.starts_with("Error:"),
    )?;
    let result = page.text("#sensitive-result")?.unwrap_or_default();
    if result == SENSITIVE_DONE {
        return Err("the sensitive action succeeded while signed out".to_owned());
    }
    shots.take(page, "final-signed-out")?;
    Ok(())
}

/// Password sign-up (signed in by the password alone), add a passkey, log out; a wrong
/// password is refused; the right one is now only a first factor: the page asks for the
/// passkey (no ceremony yet), `#mfa-verify` completes the sign-in with exactly one
/// signature, and the sensitive action then needs no further ceremony.
pub(crate) fn password_then_passkey_journey(
    page: &mut Page<'_>,
    base_url: &str,
    authenticator: &str,
    shots: &mut Shots,
) -> CdpResult<()> {
    page.add_init_script(WITHOUT_AUTOFILL)?;
    page.navigate(&format!("{base_url}/"), STEP_TIMEOUT)?;
    wait_text(page, "#status", "the page to show it is signed out", |t| {
        t == SIGNED_OUT
    })?;
    act(page, "#to-signup")?;
    page.fill("#new-username", "bob")?;
    page.fill("#new-password", "correct horse battery")?;
    act(page, "#password-signup")?;
    let status = wait_text(page, "#status", "password sign-up to sign in", |t| {
        t.starts_with(SIGNED_IN)
    })?;
    let user_id = status.trim_start_matches(SIGNED_IN).to_owned();
    let expected = format!("{SIGNED_IN}{user_id}");
    expect_credentials(page, authenticator, 0, "after a password sign-up")?;
    mfa_prompt_shown(page, false, "after a password sign-up")?;
    shots.take(page, "password-signed-up")?;

    // The first passkey of a password user needs no step-up.
    act(page, "#add-passkey")?;
    wait_passkeys(page, 1, "the first passkey of a password user")?;
    expect_credentials(page, authenticator, 1, "after adding a passkey")?;
    act(page, "#logout")?;
    wait_text(page, "#status", "log-out", |t| t == SIGNED_OUT)?;

    page.fill("#username", "bob")?;
    page.fill("#password", "wrong horse battery")?;
    act(page, "#password-login")?;
    wait_text(page, "#message", "a wrong password to be refused", |t| {
        t.starts_with("Error:")
    })?;
    let status = page.text("#status")?.unwrap_or_default();
    if status != SIGNED_OUT {
        return Err(format!("a wrong password signed in: #status is {status:?}"));
    }

    let signatures = sign_count(page, authenticator)?;
    page.fill("#password", "correct horse battery")?;
    act(page, "#password-login")?;
    let partial = format!("Password verified for {user_id}; verify with your passkey");
    wait_text(page, "#status", "the page to ask for the passkey", |t| {
        t == partial
    })?;
    mfa_prompt_shown(page, true, "after the password")?;
    wait_passkeys(page, 0, "no passkey list for a half signed-in user")?;
    if sign_count(page, authenticator)? != signatures {
        return Err("the password log-in ran a passkey ceremony by itself".to_owned());
    }
    shots.take(page, "password-verified")?;

    act(page, "#mfa-verify")?;
    wait_text(
        page,
        "#status",
        "the passkey to complete the sign-in",
        |t| t == expected,
    )?;
    mfa_prompt_shown(page, false, "after the passkey")?;
    let verified = sign_count(page, authenticator)?;
    if verified != signatures + 1 {
        return Err(format!(
            "the second factor did not sign exactly once (signature counter {signatures} -> {verified})"
        ));
    }
    wait_passkeys(page, 1, "the passkey list once signed in")?;
    page.eval("document.querySelector('#sensitive-result').textContent = ''")?;
    act(page, "#sensitive")?;
    wait_text(
        page,
        "#sensitive-result",
        "the sensitive action after MFA",
        |t| t == SENSITIVE_DONE,
    )?;
    if sign_count(page, authenticator)? != verified {
        return Err("the sensitive action right after MFA ran another ceremony".to_owned());
    }
    shots.take(page, "mfa-done")?;
    act(page, "#logout")?;
    wait_text(page, "#status", "the final log-out", |t| t == SIGNED_OUT)?;
    Ok(())
}

/// Checks whether the `#mfa` prompt is visible.
fn mfa_prompt_shown(page: &mut Page<'_>, shown: bool, when: &str) -> CdpResult<()> {
    let hidden = page.eval("document.querySelector('#mfa').hidden")?;
    if hidden != serde_json::Value::Bool(!shown) {
        return Err(format!(
            "#mfa hidden is {hidden} {when}, expected {}",
            !shown
        ));
    }
    Ok(())
}

/// Clears `#message` and clicks `selector`, so the next wait sees only this action's result.
pub(crate) fn act(page: &mut Page<'_>, selector: &str) -> CdpResult<()> {
    page.eval(
        "(() => { const m = document.querySelector('#message'); if (m) m.textContent = ''; })()",
    )?;
    page.click(selector)
}

/// Waits until the element's trimmed text satisfies `check`; fails fast when `#message`
/// shows an error (the page writes errors as "Error: ...").
pub(crate) fn wait_text(
    page: &mut Page<'_>,
    selector: &str,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> CdpResult<String> {
    let started = Instant::now();
    loop {
        let text = page.text(selector)?;
        if let Some(text) = &text
            && check(text)
        {
            return Ok(text.clone());
        }
        if selector != "#message"
            && let Some(message) = page.text("#message")?
            && message.starts_with("Error:")
        {
            return Err(format!(
                "the page reported an error while waiting for {what}: {message}"
            ));
        }
        if started.elapsed() >= STEP_TIMEOUT {
            return Err(format!(
                "timed out after {} s waiting for {what}; {selector} is {text:?}",
                STEP_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `#passkeys` lists exactly `count` items; returns their authenticator ids.
pub(crate) fn wait_passkeys(
    page: &mut Page<'_>,
    count: usize,
    what: &str,
) -> CdpResult<Vec<String>> {
    let started = Instant::now();
    loop {
        let ids = page.eval(
            "Array.from(document.querySelectorAll('#passkeys li'))\
             .map((li) => li.getAttribute('data-authenticator-id') || '')",
        )?;
        let ids: Vec<String> = ids
            .as_array()
            .map(|ids| {
                ids.iter()
                    .map(|id| id.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        if ids.len() == count {
            if ids.iter().any(String::is_empty) {
                return Err(format!(
                    "a #passkeys item has no data-authenticator-id: {ids:?}"
                ));
            }
            return Ok(ids);
        }
        if let Some(message) = page.text("#message")?
            && message.starts_with("Error:")
        {
            return Err(format!(
                "the page reported an error while waiting for {what}: {message}"
            ));
        }
        if started.elapsed() >= STEP_TIMEOUT {
            return Err(format!(
                "timed out after {} s waiting for {what}; #passkeys lists {ids:?}",
                STEP_TIMEOUT.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The sum of the signature counters of the authenticator's credentials: it grows by one
/// with every assertion the authenticator makes.
pub(crate) fn sign_count(page: &mut Page<'_>, authenticator: &str) -> CdpResult<u64> {
    Ok(page
        .authenticator_credentials(authenticator)?
        .iter()
        .filter_map(|c| c["signCount"].as_u64())
        .sum())
}

/// Checks how many credentials the virtual authenticator holds.
pub(crate) fn expect_credentials(
    page: &mut Page<'_>,
    authenticator: &str,
    count: usize,
    when: &str,
) -> CdpResult<()> {
    let credentials = page.authenticator_credentials(authenticator)?;
    if credentials.len() != count {
        return Err(format!(
            "the virtual authenticator holds {} credentials {when}, expected {count}",
            credentials.len()
        ));
    }
    if let Some(credential) = credentials
        .iter()
        .find(|c| c["isResidentCredential"] != serde_json::Value::Bool(true))
    {
        return Err(format!(
            "a credential is not resident (discoverable): {credential}"
        ));
    }
    Ok(())
}

/// Account recovery on the example page: sign up with an address as the username, log out,
/// lose the device (a new empty virtual authenticator), follow "Lost your passkeys?", ask for a
/// code, type the code the app mailed (read from the test's capturing mailer), enroll a new
/// passkey and be signed in; then log out and log in with the new passkey.
///
/// Page contract: `#recovery-link`; `#recovery-email`, `#recovery-start`, `#recovery-code`,
/// `#recovery-verify`, `#recovery-message` (built by `recovery.js`).
pub(crate) fn recovery_journey(
    page: &mut Page<'_>,
    base_url: &str,
    authenticator: &str,
    shots: &mut Shots,
    mailer: &passlock_test::recovery::CapturingMailer,
) -> CdpResult<()> {
    const EMAIL: &str = "alice@example.com";
    // Buttons only: the autofill request is tested on its own.
    page.add_init_script(WITHOUT_AUTOFILL)?;
    page.navigate(&format!("{base_url}/"), STEP_TIMEOUT)?;
    wait_text(page, "#status", "the page to show it is signed out", |t| {
        t == SIGNED_OUT
    })?;
    act(page, "#to-signup")?;
    page.fill("#new-username", EMAIL)?;
    act(page, "#signup")?;
    let status = wait_text(page, "#status", "sign-up to sign the user in", |t| {
        t.starts_with(SIGNED_IN)
    })?;
    let user_id = status.trim_start_matches(SIGNED_IN).to_owned();
    act(page, "#logout")?;
    wait_text(page, "#status", "log-out", |t| t == SIGNED_OUT)?;

    // Every passkey is lost: the device is gone, a new one has no credential.
    page.remove_virtual_authenticator(authenticator)?;
    let device = page.add_virtual_authenticator(platform_authenticator())?;

    page.click("#recovery-link")?;
    page.fill("#recovery-email", EMAIL)?;
    page.click("#recovery-start")?;
    wait_text(page, "#recovery-message", "the code to be sent", |t| {
        t.starts_with("If an account uses this address")
    })?;
    shots.take(page, "recovery-code-sent")?;
    let started = Instant::now();
    let code = loop {
        if let Some(sent) = mailer.sent().into_iter().find(|s| s.to.as_str() == EMAIL) {
            break sent.code.expose_secret().to_owned();
        }
        if started.elapsed() >= STEP_TIMEOUT {
            return Err("the app mailed no recovery code".to_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    page.fill("#recovery-code", &code)?;
    page.click("#recovery-verify")?;
    let message = wait_text(page, "#recovery-message", "the recovery to sign in", |t| {
        t.starts_with("Recovered") || t.starts_with("Error:")
    })?;
    if message != format!("Recovered: signed in as {user_id}") {
        return Err(format!("recovery ended with {message:?}"));
    }
    wait_text(
        page,
        "#status",
        "the page to show the recovered user",
        |t| t == format!("{SIGNED_IN}{user_id}"),
    )?;
    expect_credentials(page, &device, 1, "after recovery")?;
    wait_passkeys(page, 2, "the old and the recovered passkey in the list")?;
    shots.take(page, "recovered")?;

    // The new passkey signs in.
    act(page, "#logout")?;
    wait_text(page, "#status", "log-out", |t| t == SIGNED_OUT)?;
    act(page, "#login")?;
    wait_text(page, "#status", "a login with the recovered passkey", |t| {
        t == format!("{SIGNED_IN}{user_id}")
    })?;
    shots.take(page, "logged-in-with-recovered-passkey")?;
    Ok(())
}
