//! What passlock costs on its hot paths, each measured beside the raw
//! library it wraps, in the same run (so the ratio holds even on a noisy,
//! shared machine). `scripts/bench-report` prints the ratios.
//!
//! * `id_token_rs256` / `id_token_es256`: [`IdTokenVerifier::verify`] with a
//!   warm key cache and the replay cache on (`passlock`), the same without
//!   the replay cache (`passlock_no_replay`), and a raw
//!   `jsonwebtoken::decode` with the same key, `iss`/`aud`/`exp` validation
//!   into a typed claims struct (`raw`). Every verification takes a fresh,
//!   pre-signed token (a pool of [`POOL`]; the replay cache is replaced,
//!   outside the timing, each time the pool is used up).
//! * `embedded_auth_memory` / `embedded_auth_sqlite`: the embedded provider's
//!   `AuthenticationVerification` (ceremony state taken from the store,
//!   webauthn-rs verification, counter update, the code issued) plus the
//!   code exchange (`passlock`: the default configuration; `passlock_id_token`:
//!   the request asks for an id_token too, signed and recorded beside the
//!   code), against a raw webauthn-rs
//!   `finish_discoverable_authentication_v2` (what the provider calls) of an assertion of the same
//!   passkey, parsed from its JSON (`raw`). Ceremonies are prepared outside
//!   the timing (`iter_batched`).
//! * `code_exchange`: `PasslockClient::exchange_code` against `FakePasslock`
//!   on loopback (`passlock`), against a raw reqwest GET of the same URL
//!   with a reused client, its body parsed into the same type (`raw`).
//!
//! Run: `cargo bench -p passlock-core --bench verify`.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use passlock_core::provider::embedded::{
    BrowserOp, CeremonyStore, CredentialStore, EmbeddedConfig, EmbeddedProvider,
    MemoryCeremonyStore, MemoryCredentialStore,
};
use passlock_core::provider::jwt::{IdTokenVerifier, VerifierConfig};
use passlock_core::provider::passlock::PasslockClient;
use passlock_core::provider::{AuthenticationRequest, PasskeyProvider, RegistrationRequest};
use passlock_core::secret::{Code, IdToken};
use passlock_core::store::MemoryReplayCache;
use passlock_core::{AuthenticatorId, ExtendedPrincipal, Proof, TenancyId, UserHandle};
use passlock_test::authenticator::SoftAuthenticator;
use passlock_test::fake_passlock::FakePasslock;
use passlock_test::keys::{StaticJwks, TestKey, jwk_set};
use serde_json::{Value, json};
use webauthn_rs::prelude::{Passkey, PublicKeyCredential, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};

/// Pre-signed id_tokens per algorithm.
const POOL: usize = 1000;
const ORIGIN: &str = "http://localhost:3000";
const TENANCY: &str = "embedded";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// id_token verification
// ---------------------------------------------------------------------------

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct RawClaims {
    sub: String,
    jti: String,
    iat: i64,
    exp: i64,
    #[serde(rename = "a:id")]
    a_id: String,
    #[serde(rename = "pk:uv")]
    uv: bool,
}

fn id_token(c: &mut Criterion, key: TestKey, config: VerifierConfig) {
    let rt = runtime();
    let issuer = config.issuer.clone();
    let audience = config.audience.as_str().to_owned();
    let verifier = IdTokenVerifier::new(
        config,
        Arc::new(StaticJwks::new(jwk_set([&key]))),
        passlock_core::clock::system(),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let user = UserHandle::random();
    let tokens: Vec<IdToken> = (0..=POOL)
        .map(|i| {
            let claims = json!({
                "iss": issuer, "aud": audience, "sub": user.as_str(),
                "jti": format!("jti-{i}-{}", std::process::id()),
                "iat": now, "exp": now + 3600, "a:id": "credential-1",
                "a:typ": "passkey", "pk:uv": true,
            });
            IdToken::new(key.sign(&claims).unwrap())
        })
        .collect();
    // Warm the key cache with a token of its own.
    let (warm, tokens) = tokens.split_first().unwrap();
    rt.block_on(verifier.verify(warm)).unwrap();
    assert_eq!(verifier.key_fetches(), 1);

    let mut raw_validation = Validation::new(key.algorithm());
    raw_validation.set_issuer(&[issuer.as_str()]);
    raw_validation.set_audience(&[audience.as_str()]);
    raw_validation.leeway = 5;
    let raw_key = DecodingKey::from_jwk(&key.jwk()).unwrap();

    let name = match key.algorithm() {
        Algorithm::RS256 => "id_token_rs256",
        _ => "id_token_es256",
    };
    let mut group = c.benchmark_group(name);
    for (id, replay) in [("passlock", true), ("passlock_no_replay", false)] {
        group.bench_function(id, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    let v = if replay {
                        verifier
                            .clone()
                            .with_replay_cache(Arc::new(MemoryReplayCache::new()))
                    } else {
                        verifier.clone().danger_without_replay_cache()
                    };
                    let n = (iters - done).min(POOL as u64);
                    let batch = &tokens[..usize::try_from(n).unwrap()];
                    let start = Instant::now();
                    rt.block_on(async {
                        for t in batch {
                            black_box(v.verify(black_box(t)).await.unwrap());
                        }
                    });
                    total += start.elapsed();
                    done += n;
                }
                total
            });
        });
    }
    group.bench_function("raw", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                let n = (iters - done).min(POOL as u64);
                let batch = &tokens[..usize::try_from(n).unwrap()];
                let start = Instant::now();
                for t in batch {
                    black_box(
                        jsonwebtoken::decode::<RawClaims>(
                            black_box(t.expose_secret()),
                            &raw_key,
                            &raw_validation,
                        )
                        .unwrap(),
                    );
                }
                total += start.elapsed();
                done += n;
            }
            total
        });
    });
    group.finish();
}

fn id_tokens(c: &mut Criterion) {
    let tenancy = TenancyId::new("bench-tenancy").unwrap();
    id_token(
        c,
        TestKey::rsa("rsa-1").unwrap(),
        VerifierConfig::passlock(tenancy.clone()),
    );
    id_token(
        c,
        TestKey::ec_p256("ec-1").unwrap(),
        VerifierConfig::embedded("passlock-embedded", tenancy),
    );
}

// ---------------------------------------------------------------------------
// Embedded authentication verification
// ---------------------------------------------------------------------------

struct Embedded {
    provider: EmbeddedProvider,
    auth: SoftAuthenticator,
    /// The registered passkey, as webauthn-rs sees it (for the raw baseline).
    passkey: Passkey,
}

async fn call(p: &EmbeddedProvider, op: BrowserOp, body: &Value) -> Value {
    let res = p.handle(TENANCY, op, body.to_string().as_bytes()).await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.body
}

async fn embedded(
    credentials: Arc<dyn CredentialStore>,
    ceremonies: Arc<dyn CeremonyStore>,
) -> Embedded {
    let provider = EmbeddedProvider::new(
        EmbeddedConfig::new("localhost", "Bench", [ORIGIN]),
        credentials,
        ceremonies,
    )
    .await
    .unwrap();
    let mut auth = SoftAuthenticator::new(ORIGIN);
    let user = UserHandle::random();
    let token = provider
        .authorize_registration(RegistrationRequest::new(user, "alice"))
        .await
        .unwrap()
        .token;
    let o = call(
        &provider,
        BrowserOp::RegistrationOptions,
        &json!({ "registrationToken": token.expose_secret() }),
    )
    .await;
    let response = auth.create(&o["optionsJSON"]).await.unwrap();
    let v = call(
        &provider,
        BrowserOp::RegistrationVerification,
        &json!({ "response": response, "sessionToken": o["sessionToken"] }),
    )
    .await;
    let id = AuthenticatorId::new(v["principal"]["authenticatorId"].as_str().unwrap()).unwrap();
    let stored = provider.credential_store().get(&id).await.unwrap().unwrap();
    let passkey: Passkey = serde_json::from_str(&stored.passkey_json).unwrap();
    Embedded {
        provider,
        auth,
        passkey,
    }
}

/// A verification body of a fresh usernameless ceremony (options state in
/// the provider's store); `id_token` asks for an id_token beside the code.
async fn passlock_ceremony(e: &mut Embedded, id_token: bool) -> Vec<u8> {
    let token = e
        .provider
        .authorize_authentication(AuthenticationRequest::discoverable())
        .await
        .unwrap()
        .token;
    let o = call(
        &e.provider,
        BrowserOp::AuthenticationOptions,
        &json!({ "authenticationToken": token.expose_secret() }),
    )
    .await;
    let response = e.auth.get(&o["optionsJSON"]).await.unwrap();
    let mut body = json!({ "response": response, "sessionToken": o["sessionToken"] });
    if id_token {
        body["idToken"] = json!(true);
    }
    body.to_string().into_bytes()
}

fn raw_webauthn() -> Webauthn {
    WebauthnBuilder::new("localhost", &Url::parse(ORIGIN).unwrap())
        .unwrap()
        .rp_name("Bench")
        .build()
        .unwrap()
}

fn embedded_group(c: &mut Criterion, name: &str, e: Embedded, rt: &tokio::runtime::Runtime) {
    let e = std::cell::RefCell::new(e);
    let raw = raw_webauthn();
    let mut group = c.benchmark_group(name);
    // The default (the code alone), then with an id_token asked for.
    for (id, id_token) in [("passlock", false), ("passlock_id_token", true)] {
        group.bench_function(id, |b| {
            b.iter_batched(
                || rt.block_on(passlock_ceremony(&mut e.borrow_mut(), id_token)),
                |body| {
                    let provider = e.borrow().provider.clone();
                    rt.block_on(async {
                        let res = provider
                            .handle(TENANCY, BrowserOp::AuthenticationVerification, &body)
                            .await;
                        assert_eq!(res.status, 200, "{}", res.body);
                        assert_eq!(res.body["id_token"].is_string(), id_token);
                        let code = Code::new(res.body["code"].as_str().unwrap());
                        provider.verify(&Proof::Code(code)).await.unwrap()
                    })
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.bench_function("raw", |b| {
        b.iter_batched(
            || {
                let (rcr, state) = raw.start_discoverable_authentication().unwrap();
                let options = serde_json::to_value(&rcr).unwrap()["publicKey"].clone();
                let response = rt.block_on(e.borrow_mut().auth.get(&options)).unwrap();
                (response.to_string().into_bytes(), state)
            },
            |(body, state)| {
                let credential: PublicKeyCredential = serde_json::from_slice(&body).unwrap();
                raw.finish_discoverable_authentication_v2(&credential, state, &e.borrow().passkey)
                    .unwrap()
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn embedded_auth(c: &mut Criterion) {
    let rt = runtime();
    let memory = rt.block_on(embedded(
        Arc::new(MemoryCredentialStore::new()),
        Arc::new(MemoryCeremonyStore::new()),
    ));
    embedded_group(c, "embedded_auth_memory", memory, &rt);

    let sqlite = rt.block_on(async {
        use passlock_core::store::sqlite::{SqliteCeremonyStore, SqliteCredentialStore, migrate};
        use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
        let url = format!(
            "sqlite:file:passlock_bench_{}?mode=memory&cache=shared",
            std::process::id()
        );
        let options: SqliteConnectOptions = url.parse().unwrap();
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options.busy_timeout(Duration::from_secs(30)))
            .await
            .unwrap();
        migrate(&pool).await.unwrap();
        embedded(
            Arc::new(SqliteCredentialStore::new(pool.clone())),
            Arc::new(SqliteCeremonyStore::new(pool)),
        )
        .await
    });
    embedded_group(c, "embedded_auth_sqlite", sqlite, &rt);
}

// ---------------------------------------------------------------------------
// Code exchange over loopback
// ---------------------------------------------------------------------------

fn code_exchange(c: &mut Criterion) {
    // The fake serves on the runtime's workers while the client runs in
    // `block_on` on the bench thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = rt.block_on(FakePasslock::start()).unwrap();
    let client = PasslockClient::new(fake.client_config()).unwrap();
    let raw = reqwest::Client::new();
    let user = UserHandle::random();
    let issue = || fake.issue_code(&user, "credential-1", true).unwrap();
    let prefix = format!(
        "{}/v2/{}/principal/",
        fake.endpoint(),
        fake.tenancy_id().as_str()
    );
    let api_key = fake.api_key();
    // Warm both connection pools.
    rt.block_on(client.exchange_code(&issue())).unwrap();
    rt.block_on(raw.get(format!("{prefix}none")).send())
        .unwrap();

    let mut group = c.benchmark_group("code_exchange");
    group.bench_function("passlock", |b| {
        b.iter_batched(
            issue,
            |code| rt.block_on(client.exchange_code(&code)).unwrap(),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("raw", |b| {
        b.iter_batched(
            || format!("{prefix}{}", issue().expose_secret()),
            |url| {
                rt.block_on(async {
                    let resp = raw
                        .get(url)
                        .bearer_auth(api_key.expose_secret())
                        .header("accept", "application/json")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                    let body = resp.bytes().await.unwrap();
                    serde_json::from_slice::<ExtendedPrincipal>(&body).unwrap()
                })
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group! {
    name = benches;
    // Short runs: the machine is shared; the ratios are what count. The
    // command line (`--measurement-time`, `--sample-size`) overrides these.
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = id_tokens, embedded_auth, code_exchange
}
criterion_main!(benches);
