//! `passlock_core::flow` branches only reachable from an app's own code.

// Helpers outside #[test] functions may unwrap and panic too: this is test code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use passlock_core::adapter::flow;
use passlock_core::clock::ManualClock;
use passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use passlock_core::store::MemoryAuthenticatorStore;
use passlock_core::throttle::ClientInfo;
use passlock_core::{FlowError, Passlock, SessionChange, SessionRecord};

async fn passlock(clock: &ManualClock) -> Passlock<i64> {
    let provider = EmbeddedProvider::in_memory(
        EmbeddedConfig::new("localhost", "passlock tests", ["http://localhost:3000"])
            .with_clock(Arc::new(clock.clone())),
    )
    .await
    .unwrap();
    Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::<i64>::new()),
    )
    .clock(Arc::new(clock.clone()))
    .build()
    .unwrap()
}

/// `flow::first_factor`'s method check: an empty or blank method name is
/// the app's mistake (`500 misconfigured`), and signs nobody in; a named
/// one records the factor in the session's `amr`.
#[tokio::test]
async fn first_factor_needs_a_method_name() {
    let clock = ManualClock::starting_now();
    let pl = passlock(&clock).await;
    let record = SessionRecord::<i64>::default();
    for method in ["", "   "] {
        let e = flow::first_factor(&pl, &record, 7, method, &ClientInfo::new(None))
            .await
            .err()
            .unwrap_or_else(|| panic!("{method:?} was accepted"));
        assert!(matches!(e, FlowError::Misconfigured(_)), "{e:?}");
        assert_eq!(e.code(), "misconfigured");
        assert_eq!(e.status().as_u16(), 500);
    }
    let outcome = flow::first_factor(&pl, &record, 7, "password", &ClientInfo::new(None))
        .await
        .unwrap();
    match outcome.session {
        SessionChange::Set { record, renew } => {
            assert!(renew, "the session id is cycled");
            let auth = record.auth.unwrap();
            assert_eq!(auth.user_id, 7);
        }
        other => panic!("{other:?}"),
    }
}
