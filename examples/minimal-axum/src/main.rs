//! The smallest passlock app on axum: the embedded provider over memory
//! stores and memory sessions, one guarded route. Everything is lost at
//! restart: this is the shape of a test app, not of a production one (see
//! the README for the production wiring). CI counts the crates it builds
//! (`cargo tree -p minimal-axum`): no reqwest, sqlx or redis.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use passlock_axum::passlock_core::provider::embedded::{EmbeddedConfig, EmbeddedProvider};
use passlock_axum::passlock_core::store::MemoryAuthenticatorStore;
use passlock_axum::passlock_core::{Passlock, SignUpError, SignUpHook};
use passlock_axum::tower_sessions::{MemoryStore, SessionManagerLayer};
use passlock_axum::{PasskeyUser, StepUp};

/// Users are numbered in memory.
#[derive(Debug, Default)]
struct Users(std::sync::atomic::AtomicI64);

#[passlock_axum::passlock_core::async_trait]
impl SignUpHook<i64> for Users {
    async fn create_user(&self, _username: &str) -> Result<i64, SignUpError> {
        Ok(self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1)
    }

    async fn abandon_user(&self, _user: &i64) -> Result<(), SignUpError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = std::env::var("PORT").map_or(Ok(3000), |p| p.parse())?;
    let origin = format!("http://localhost:{port}");
    let provider =
        EmbeddedProvider::in_memory(EmbeddedConfig::new("localhost", "minimal", [origin])).await?;
    let passlock: Passlock<i64> = Passlock::builder(
        Arc::new(provider),
        Arc::new(MemoryAuthenticatorStore::new()),
    )
    .sign_up(Arc::new(Users::default()))
    .build()?;
    let sessions = SessionManagerLayer::new(MemoryStore::default())
        .with_secure(passlock.secure_cookies())
        .with_http_only(true);
    let app = Router::new()
        .route(
            "/account",
            get(|user: PasskeyUser<i64>| async move { format!("user {}", user.user_id) }),
        )
        .route(
            "/account/sensitive",
            get(|_: StepUp<300>, user: PasskeyUser<i64>| async move {
                format!("fresh {}", user.user_id)
            }),
        )
        .merge(passlock_axum::router(passlock.clone()))
        .with_state(passlock)
        .layer(sessions);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
