//! `cargo run -p axum-app`: serves the example at <http://localhost:3000>.

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
    // Hosted Passlock when PASSLOCK_TENANCY_ID and PASSLOCK_API_KEY are set.
    config.hosted = HostedSettings::from_env();
    // "Password or passkey" for everyone; by default a user who has a
    // passkey must use it after the password.
    config.passkey_required_as_second_factor = std::env::var_os("PASSWORD_OR_PASSKEY").is_none();
    let app = build_app(config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("listening on http://localhost:3000");
    println!("passlock example: open http://localhost:3000");
    axum::serve(listener, app).await?;
    Ok(())
}
