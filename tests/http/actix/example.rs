//! The actix example app end to end: the page, sign-up, `/api/me` and the
//! step-up-protected `/api/sensitive`, with sessions in its SQLite database.

use actix_app::AppConfig;
use passlock_actix::passlock_core::clock::ManualClock;
use serde_json::json;

use super::ActixApp;
use crate::harness::{ORIGIN, TestRequest, World, authenticator};

#[tokio::test]
async fn example_app_signs_up_and_protects_its_api() {
    let db = format!(
        "sqlite:file:{}?mode=memory&cache=shared",
        passlock_tests::unique_name("actix_example")
    );
    let config = AppConfig {
        origin: ORIGIN.to_owned(),
        ..AppConfig::localhost(3001, db)
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    let app = ActixApp::start(move || async move {
        let example = actix_app::build(config).await.unwrap();
        let _ = tx.send(example.passlock.clone());
        example.app()
    });
    let w = World {
        app,
        passlock: rx.await.unwrap(),
        clock: ManualClock::starting_now(),
    };
    let mut c = w.client();
    let page = c
        .send(TestRequest {
            method: "GET",
            path: "/".to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
        })
        .await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text.contains("/passkey/client.js"), "{}", page.text);
    c.get("/api/me")
        .await
        .assert_error(401, "not_authenticated");

    let mut auth = authenticator();
    let (user, aid) = c.sign_up(&mut auth, "alice").await;
    let me = c.get("/api/me").await;
    assert_eq!(me.json["user_id"], user, "{me:?}");
    let r = c.post("/api/sensitive", json!({})).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json["done"], true);
    assert_eq!(w.links(user).await, vec![aid]);

    // The same user signs in again from another browser; the username is taken.
    let mut other = w.client();
    let r = other.login(&mut auth).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(other.session_user().await, Some(user));
    let mut late = w.client();
    let r = late.authorize_sign_up("alice").await;
    r.assert_error(409, "username_taken");
    assert_eq!(late.session_user().await, None);
}
