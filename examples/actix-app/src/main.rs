//! `cargo run -p actix-app`: serves the example at <http://localhost:3001>.

use actix_app::{AppConfig, BoxError, HostedSettings, build};
use actix_web::HttpServer;
use tracing_subscriber::EnvFilter;

#[actix_web::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,actix_app=debug,passlock_core=debug")),
        )
        .init();
    let database_url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://passlock-actix-example.db".to_owned());
    let mut config = AppConfig::localhost(3001, database_url);
    // Hosted Passlock when PASSLOCK_TENANCY_ID and PASSLOCK_API_KEY are set.
    config.hosted = HostedSettings::from_env();
    let example = build(config).await?;
    let cleanup = example.sessions.clone();
    actix_web::rt::spawn(async move {
        loop {
            if let Err(e) = cleanup.delete_expired().await {
                tracing::warn!(error = %e, "could not delete expired sessions");
            }
            actix_web::rt::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
    tracing::info!("listening on http://localhost:3001");
    println!("passlock example: open http://localhost:3001");
    HttpServer::new(move || example.clone().app())
        .bind(("127.0.0.1", 3001))?
        .run()
        .await?;
    Ok(())
}
