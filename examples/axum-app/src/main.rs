//! `cargo run -p axum-app`: serves the example at <http://localhost:3000>.
//!
//! Environment (all optional): `DATABASE_URL` (default
//! `sqlite://passlock-example.db`; `postgres://...` for PostgreSQL),
//! `REDIS_URL` (sessions in Redis), `PASSLOCK_ORIGIN` (the origin browsers
//! use, default `http://localhost:3000`), `PASSLOCK_LISTEN` (the address to
//! bind, default `127.0.0.1:3000`; several instances behind one origin
//! listen on different ports), and `PASSLOCK_TENANCY_ID` +
//! `PASSLOCK_API_KEY` for hosted Passlock, `PASSWORD_OR_PASSKEY=1` to turn
//! the passkey-after-password requirement off, and
//! `PASSLOCK_TRUSTED_PROXY_HEADER` (e.g. `x-forwarded-for`) behind a proxy
//! that always sets it. Served with connect info: throttling counts per
//! client address.

use axum_app::{AppConfig, BoxError, HostedSettings, build_app};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,axum_app=debug,passlock_core=debug")),
        )
        .init();
    let database_url =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://passlock-example.db".to_owned());
    let mut config = AppConfig::localhost(3000, database_url);
    if let Ok(origin) = std::env::var("PASSLOCK_ORIGIN") {
        config.origin = origin;
    }
    config.redis_url = std::env::var("REDIS_URL").ok();
    // "Password or passkey" for everyone; by default a user who has a
    // passkey must use it after the password.
    config.passkey_required_as_second_factor = std::env::var_os("PASSWORD_OR_PASSKEY").is_none();
    // Hosted Passlock when PASSLOCK_TENANCY_ID and PASSLOCK_API_KEY are set.
    config.hosted = HostedSettings::from_env();
    let listen = std::env::var("PASSLOCK_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".to_owned());
    let app = build_app(config.clone()).await?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!("listening on {listen} for {}", config.origin);
    println!("passlock example: open {}", config.origin);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await?;
    Ok(())
}

/// Ctrl-C or SIGTERM: stop accepting, finish the requests in flight.
async fn shutdown() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
