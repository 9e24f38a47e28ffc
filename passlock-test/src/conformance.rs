//! Conformance suites any store implementation can run: the contract of
//! [`AuthenticatorStore`], [`CredentialStore`], [`CeremonyStore`],
//! [`ReplayCache`] and [`RevocationStore`], checked once and for all,
//! concurrency included.
//!
//! Each suite takes the store behind an [`Arc`] (a concrete type or a
//! `dyn` trait object) and returns `Ok(())` or the first [`Failure`]. The
//! suites use fresh random ids on every run and only look at what they
//! wrote themselves, so they can run against a database that already holds
//! data, several times, and in parallel.
//!
//! ```
//! use std::sync::Arc;
//! use passlock_core::store::MemoryAuthenticatorStore;
//! use passlock_core::store::{MemoryCeremonyStore, MemoryCredentialStore};
//! use passlock_core::store::MemoryReplayCache;
//! use passlock_test::conformance;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), conformance::Failure> {
//! conformance::authenticator_store(Arc::new(MemoryAuthenticatorStore::<String>::new())).await?;
//! conformance::credential_store(Arc::new(MemoryCredentialStore::new())).await?;
//! conformance::ceremony_store(Arc::new(MemoryCeremonyStore::new())).await?;
//! conformance::replay_cache(Arc::new(MemoryReplayCache::new())).await?;
//! # Ok(())
//! # }
//! ```
//!
//! A store over your own user table with `i64` ids (and a foreign key) runs
//! [`authenticator_store_with`], mapping the suite's user numbers to users
//! that exist:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use passlock_test::conformance;
//! # async fn run(store: Arc<dyn passlock_core::AuthenticatorStore<i64>>, first_id: i64)
//! # -> Result<(), conformance::Failure> {
//! // users first_id .. first_id + conformance::USERS exist in the `users` table
//! conformance::authenticator_store_with(store, move |n| first_id + n as i64).await?;
//! # Ok(())
//! # }
//! ```

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::task::JoinSet;

use passlock_core::clock::UnixMillis;
use passlock_core::error::StoreError;
use passlock_core::id::{AuthenticatorId, UserHandle};
use passlock_core::store::ReplayCache;
use passlock_core::store::RevocationStore;
use passlock_core::store::{AuthenticatorStore, LinkedAuthenticator, UserId};
use passlock_core::store::{CeremonyStore, CredentialStore, CredentialUse, StoredCredential};

/// How many concurrent callers the concurrency checks run.
pub const CONCURRENCY: usize = 50;

/// How many distinct users [`authenticator_store_with`] asks its `user`
/// function for (`0..USERS`).
pub const USERS: usize = CONCURRENCY + 4;

/// A fixed point in time the suites count from (epoch ms).
const T0: UnixMillis = 1_750_000_000_000;

/// A check of a suite that did not hold.
#[derive(Debug)]
pub struct Failure {
    /// The check, e.g. `"link_conflict_changes_nothing"`.
    pub check: &'static str,
    /// What went wrong.
    pub detail: String,
}

impl Failure {
    fn new(check: &'static str, detail: impl Into<String>) -> Self {
        Self {
            check,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "store conformance check `{}` failed: {}",
            self.check, self.detail
        )
    }
}

impl std::error::Error for Failure {}

/// Fails `check` unless `cond`.
macro_rules! ensure {
    ($check:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Failure::new($check, format!($($fmt)+)));
        }
    };
}

/// Turns a store error into a failure of `check`.
trait Checked<T> {
    fn at(self, check: &'static str) -> Result<T, Failure>;
}

impl<T> Checked<T> for Result<T, StoreError> {
    fn at(self, check: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(check, format!("unexpected store error: {e:?}")))
    }
}

/// A string no earlier run (in this process or another) used.
fn run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = std::collections::hash_map::RandomState::new().hash_one(n);
    format!("{random:016x}{n}")
}

fn authenticator(check: &'static str, run: &str, name: &str) -> Result<AuthenticatorId, Failure> {
    AuthenticatorId::new(format!("conformance-{run}-{name}"))
        .map_err(|e| Failure::new(check, format!("test id: {e}")))
}

fn handle(check: &'static str, run: &str, name: &str) -> Result<UserHandle, Failure> {
    UserHandle::new(format!("conformance-{run}-{name}"))
        .map_err(|e| Failure::new(check, format!("test handle: {e}")))
}

/// Runs `n` copies of `task(i)` concurrently and collects their results in
/// order of `i`.
async fn concurrently<T, F, Fut>(check: &'static str, n: usize, task: F) -> Result<Vec<T>, Failure>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let mut set = JoinSet::new();
    for i in 0..n {
        let fut = task(i);
        set.spawn(async move { (i, fut.await) });
    }
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    while let Some(joined) = set.join_next().await {
        let (i, value) =
            joined.map_err(|e| Failure::new(check, format!("a concurrent task failed: {e}")))?;
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(value);
        }
    }
    out.into_iter()
        .map(|v| v.ok_or_else(|| Failure::new(check, "a concurrent task is missing")))
        .collect()
}

/// The authenticator suite with `String` user ids (fresh for every run).
pub async fn authenticator_store<S>(store: Arc<S>) -> Result<(), Failure>
where
    S: AuthenticatorStore<String> + ?Sized,
{
    let run = run_id();
    authenticator_store_with(store, move |n| format!("conformance-{run}-user{n}")).await
}

/// The authenticator suite for any user id type: `user(n)` for `n` in
/// `0..`[`USERS`] must give distinct users (users that exist, when the store
/// has a foreign key to a user table). Only authenticators created by this
/// run are looked at, so the users may have other passkeys.
///
/// Checks: link, lookup, unlink and touch; a link to another user is a
/// [`StoreError::Conflict`] and changes nothing; linking the same pair twice
/// is a no-op (even concurrently); unlinking another user's link is refused
/// and changes nothing; `authenticators_of` lists oldest first; of
/// [`CONCURRENCY`] concurrent links of one authenticator to as many users
/// exactly one wins and the others get a conflict.
pub async fn authenticator_store_with<U, S>(
    store: Arc<S>,
    user: impl Fn(usize) -> U,
) -> Result<(), Failure>
where
    U: UserId,
    S: AuthenticatorStore<U> + ?Sized,
{
    let run = run_id();
    let prefix = format!("conformance-{run}-");
    let ours = |list: Vec<LinkedAuthenticator>| -> Vec<LinkedAuthenticator> {
        list.into_iter()
            .filter(|l| l.authenticator_id.as_str().starts_with(&prefix))
            .collect()
    };
    let alice = user(0);
    let bob = user(1);

    // Link and look up.
    let c = "link_and_lookup";
    let a = authenticator(c, &run, "a")?;
    ensure!(
        c,
        store.user_of(&a).await.at(c)?.is_none(),
        "a fresh authenticator has a user"
    );
    store.link(&a, &alice, T0).await.at(c)?;
    let owner = store.user_of(&a).await.at(c)?;
    ensure!(
        c,
        owner.as_ref() == Some(&alice),
        "user_of gave {owner:?}, want {alice:?}"
    );
    let listed = ours(store.authenticators_of(&alice).await.at(c)?);
    let want = vec![LinkedAuthenticator::new(a.clone(), T0, None)];
    ensure!(
        c,
        listed == want,
        "authenticators_of gave {listed:?}, want {want:?}"
    );

    // The same pair again: a no-op.
    let c = "link_same_pair_is_noop";
    store.link(&a, &alice, T0 + 500).await.at(c)?;
    let listed = ours(store.authenticators_of(&alice).await.at(c)?);
    ensure!(
        c,
        listed == want,
        "after a second link authenticators_of gave {listed:?}, want {want:?}"
    );

    // Another user: a conflict, nothing changed.
    let c = "link_conflict_changes_nothing";
    let r = store.link(&a, &bob, T0 + 600).await;
    ensure!(
        c,
        matches!(r, Err(StoreError::Conflict)),
        "linking to another user gave {r:?}, want Err(Conflict)"
    );
    let owner = store.user_of(&a).await.at(c)?;
    ensure!(
        c,
        owner.as_ref() == Some(&alice),
        "the owner became {owner:?}"
    );
    let listed = ours(store.authenticators_of(&bob).await.at(c)?);
    ensure!(c, listed.is_empty(), "the other user lists {listed:?}");
    let listed = ours(store.authenticators_of(&alice).await.at(c)?);
    ensure!(
        c,
        listed == want,
        "the owner now lists {listed:?}, want {want:?}"
    );

    // Touch.
    let c = "touch_sets_last_used_at";
    store.touch(&a, T0 + 700).await.at(c)?;
    let listed = ours(store.authenticators_of(&alice).await.at(c)?);
    let touched = vec![LinkedAuthenticator::new(a.clone(), T0, Some(T0 + 700))];
    ensure!(
        c,
        listed == touched,
        "after touch: {listed:?}, want {touched:?}"
    );
    store.touch(&a, T0 + 800).await.at(c)?;
    let listed = ours(store.authenticators_of(&alice).await.at(c)?);
    let touched = vec![LinkedAuthenticator::new(a.clone(), T0, Some(T0 + 800))];
    ensure!(
        c,
        listed == touched,
        "after a second touch: {listed:?}, want {touched:?}"
    );

    // Unlink of another user's link: refused, nothing changed.
    let c = "unlink_of_other_users_link_refused";
    let removed = store.unlink(&a, &bob).await.at(c)?;
    ensure!(
        c,
        !removed,
        "unlink by another user said it removed the link"
    );
    let owner = store.user_of(&a).await.at(c)?;
    ensure!(
        c,
        owner.as_ref() == Some(&alice),
        "the owner became {owner:?}"
    );
    let listed = ours(store.authenticators_of(&alice).await.at(c)?);
    ensure!(c, listed == touched, "the owner now lists {listed:?}");

    // Unlink by the owner.
    let c = "unlink";
    ensure!(
        c,
        store.unlink(&a, &alice).await.at(c)?,
        "unlink by the owner said there was no link"
    );
    let owner = store.user_of(&a).await.at(c)?;
    ensure!(c, owner.is_none(), "after unlink the owner is {owner:?}");
    let listed = ours(store.authenticators_of(&alice).await.at(c)?);
    ensure!(
        c,
        listed.is_empty(),
        "after unlink the owner lists {listed:?}"
    );
    ensure!(
        c,
        !store.unlink(&a, &alice).await.at(c)?,
        "a second unlink said it removed a link"
    );
    store.link(&a, &bob, T0 + 900).await.at(c)?;
    let owner = store.user_of(&a).await.at(c)?;
    ensure!(
        c,
        owner.as_ref() == Some(&bob),
        "relink after unlink: owner {owner:?}"
    );

    // Oldest first, whatever the order of linking and of the ids.
    let c = "authenticators_of_oldest_first";
    let carol = user(2);
    let (x, y, z) = (
        authenticator(c, &run, "order-1")?,
        authenticator(c, &run, "order-2")?,
        authenticator(c, &run, "order-3")?,
    );
    store.link(&x, &carol, T0 + 3_000).await.at(c)?;
    store.link(&y, &carol, T0 + 1_000).await.at(c)?;
    store.link(&z, &carol, T0 + 2_000).await.at(c)?;
    let listed: Vec<_> = ours(store.authenticators_of(&carol).await.at(c)?)
        .into_iter()
        .map(|l| (l.authenticator_id, l.created_at))
        .collect();
    let want = vec![(y, T0 + 1_000), (z, T0 + 2_000), (x, T0 + 3_000)];
    ensure!(
        c,
        listed == want,
        "authenticators_of gave {listed:?}, want {want:?}"
    );

    // Concurrent links of one authenticator to different users.
    let c = "concurrent_links_one_winner";
    let contested = authenticator(c, &run, "contested")?;
    let users: Vec<U> = (0..CONCURRENCY).map(|i| user(i + 3)).collect();
    let results = concurrently(c, CONCURRENCY, |i| {
        let store = Arc::clone(&store);
        let contested = contested.clone();
        let u = users.get(i).cloned();
        async move {
            match u {
                Some(u) => store.link(&contested, &u, T0 + 10_000).await,
                None => Err(StoreError::backend("no such user")),
            }
        }
    })
    .await?;
    let winners: Vec<usize> = (0..CONCURRENCY)
        .filter(|i| matches!(results.get(*i), Some(Ok(()))))
        .collect();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict)))
        .count();
    ensure!(
        c,
        winners.len() == 1 && conflicts == CONCURRENCY - 1,
        "{} links succeeded and {conflicts} conflicted, want 1 and {}; errors: {:?}",
        winners.len(),
        CONCURRENCY - 1,
        results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Backend(_))))
            .collect::<Vec<_>>()
    );
    let winner = winners
        .first()
        .and_then(|i| users.get(*i))
        .ok_or_else(|| Failure::new(c, "no winner"))?;
    let owner = store.user_of(&contested).await.at(c)?;
    ensure!(
        c,
        owner.as_ref() == Some(winner),
        "the owner is {owner:?}, the winner {winner:?}"
    );
    for u in &users {
        let listed = ours(store.authenticators_of(u).await.at(c)?);
        let has = listed.iter().any(|l| l.authenticator_id == contested);
        ensure!(c, has == (u == winner), "user {u:?} lists {listed:?}");
    }

    // Concurrent links of the same pair: all succeed, one link.
    let c = "concurrent_same_pair_links";
    let shared = authenticator(c, &run, "same-pair")?;
    let dave = user(USERS - 1);
    let results = concurrently(c, 10, |i| {
        let store = Arc::clone(&store);
        let shared = shared.clone();
        let dave = dave.clone();
        async move { store.link(&shared, &dave, T0 + 20_000 + i as i64).await }
    })
    .await?;
    ensure!(
        c,
        results.iter().all(Result::is_ok),
        "linking one pair concurrently gave {results:?}"
    );
    let listed = ours(store.authenticators_of(&dave).await.at(c)?);
    ensure!(
        c,
        listed.len() == 1 && listed.iter().all(|l| l.authenticator_id == shared),
        "after concurrent links of one pair: {listed:?}"
    );
    Ok(())
}

fn credential(
    check: &'static str,
    run: &str,
    name: &str,
    user: &UserHandle,
    created_at: UnixMillis,
) -> Result<StoredCredential, Failure> {
    Ok(StoredCredential::new(
        authenticator(check, run, name)?,
        user.clone(),
        format!("{name}@example.com"),
        format!(r#"{{"cred":"{name}","n":0}}"#),
        created_at,
        0,
        true,
        false,
    ))
}

fn usage(previous: u32, count: u32, used_at: UnixMillis) -> CredentialUse {
    CredentialUse::new(
        format!(r#"{{"n":{count}}}"#),
        previous,
        count,
        true,
        used_at,
    )
}

/// The embedded provider's credential suite.
///
/// Checks: insert, get, list and delete round-trip every field (a counter of
/// `u32::MAX` included); a duplicate credential id is a
/// [`StoreError::Conflict`] for the same and for another user and changes
/// nothing; `record_use` is a compare-and-set on the counter (a stale
/// previous count is a conflict, and of concurrent uses at one count exactly
/// one is recorded); `rename` sets the name only, of that credential only,
/// and answers `false` for an unknown id; names and AAGUIDs round-trip.
pub async fn credential_store<S>(store: Arc<S>) -> Result<(), Failure>
where
    S: CredentialStore + ?Sized,
{
    let run = run_id();
    let c = "insert_get_list";
    let alice = handle(c, &run, "alice")?;
    let bob = handle(c, &run, "bob")?;
    let first = credential(c, &run, "one", &alice, T0 + 2_000)?;
    let mut second = credential(c, &run, "two", &alice, T0 + 1_000)?;
    second.sign_count = u32::MAX;
    second.backup_eligible = false;
    second.backup_state = true;
    second.name = Some("Work laptop \u{2713}".to_owned());
    second.aaguid = Some("bada5566-a7aa-401f-bd96-45619a55120d".to_owned());
    ensure!(
        c,
        store.get(&first.credential_id).await.at(c)?.is_none(),
        "a fresh credential id exists"
    );
    store.insert(&first).await.at(c)?;
    store.insert(&second).await.at(c)?;
    let got = store.get(&first.credential_id).await.at(c)?;
    ensure!(
        c,
        got.as_ref() == Some(&first),
        "get gave {got:?}, want {first:?}"
    );
    let got = store.get(&second.credential_id).await.at(c)?;
    ensure!(
        c,
        got.as_ref() == Some(&second),
        "get gave {got:?}, want {second:?} (sign count u32::MAX, flags false/true, name and AAGUID)"
    );
    let mut listed = store.list_for_user(&alice).await.at(c)?;
    listed.sort_by(|a, b| a.credential_id.cmp(&b.credential_id));
    let want = vec![first.clone(), second.clone()];
    ensure!(
        c,
        listed == want,
        "list_for_user gave {listed:?}, want {want:?}"
    );
    let listed = store.list_for_user(&bob).await.at(c)?;
    ensure!(
        c,
        listed.is_empty(),
        "a user without credentials lists {listed:?}"
    );

    let c = "duplicate_id_refused";
    let mut same_user = first.clone();
    same_user.username = "other@example.com".to_owned();
    same_user.passkey_json = r#"{"other":true}"#.to_owned();
    let r = store.insert(&same_user).await;
    ensure!(
        c,
        matches!(r, Err(StoreError::Conflict)),
        "a duplicate id for the same user gave {r:?}, want Err(Conflict)"
    );
    let mut other_user = same_user.clone();
    other_user.user_handle = bob.clone();
    let r = store.insert(&other_user).await;
    ensure!(
        c,
        matches!(r, Err(StoreError::Conflict)),
        "a duplicate id for another user gave {r:?}, want Err(Conflict)"
    );
    let got = store.get(&first.credential_id).await.at(c)?;
    ensure!(
        c,
        got.as_ref() == Some(&first),
        "a refused insert changed the credential: {got:?}"
    );
    let listed = store.list_for_user(&bob).await.at(c)?;
    ensure!(
        c,
        listed.is_empty(),
        "a refused insert gave the other user {listed:?}"
    );

    let c = "record_use_compare_and_set";
    let used = usage(0, 5, T0 + 3_000);
    store.record_use(&first.credential_id, &used).await.at(c)?;
    let mut want = first.clone();
    want.passkey_json = used.passkey_json.clone();
    want.sign_count = 5;
    want.backup_state = true;
    want.last_used_at = Some(T0 + 3_000);
    let got = store.get(&first.credential_id).await.at(c)?;
    ensure!(
        c,
        got.as_ref() == Some(&want),
        "after record_use: {got:?}, want {want:?}"
    );
    let stale = usage(0, 6, T0 + 4_000);
    let r = store.record_use(&first.credential_id, &stale).await;
    ensure!(
        c,
        matches!(r, Err(StoreError::Conflict)),
        "record_use with a stale previous count gave {r:?}, want Err(Conflict)"
    );
    let got = store.get(&first.credential_id).await.at(c)?;
    ensure!(
        c,
        got.as_ref() == Some(&want),
        "a refused record_use changed it: {got:?}"
    );

    let c = "rename";
    ensure!(
        c,
        store
            .rename(&second.credential_id, "Phone \u{1F4F1}")
            .await
            .at(c)?,
        "rename said there was no such credential"
    );
    let mut renamed = second.clone();
    renamed.name = Some("Phone \u{1F4F1}".to_owned());
    let got = store.get(&second.credential_id).await.at(c)?;
    ensure!(
        c,
        got.as_ref() == Some(&renamed),
        "after rename: {got:?}, want {renamed:?} (only the name changed)"
    );
    let got = store.get(&first.credential_id).await.at(c)?;
    ensure!(
        c,
        got.as_ref() == Some(&want),
        "a rename changed another credential: {got:?}"
    );
    let unknown = authenticator(c, &run, "unknown")?;
    ensure!(
        c,
        !store.rename(&unknown, "x").await.at(c)?,
        "renaming an unknown credential said it did"
    );
    ensure!(
        c,
        store.get(&unknown).await.at(c)?.is_none(),
        "renaming an unknown credential created it"
    );
    store
        .rename(&second.credential_id, "Work laptop \u{2713}")
        .await
        .at(c)?;

    let c = "concurrent_record_use_one_winner";
    let results = concurrently(c, CONCURRENCY, |i| {
        let store = Arc::clone(&store);
        let id = first.credential_id.clone();
        async move {
            let n = u32::try_from(i).unwrap_or(0);
            store.record_use(&id, &usage(5, 6 + n, T0 + 5_000)).await
        }
    })
    .await?;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict)))
        .count();
    ensure!(
        c,
        ok == 1 && conflicts == CONCURRENCY - 1,
        "{ok} concurrent uses recorded and {conflicts} conflicted, want 1 and {}",
        CONCURRENCY - 1
    );
    let winner = results.iter().position(Result::is_ok).unwrap_or(0);
    let got = store.get(&first.credential_id).await.at(c)?;
    let want_count = 6 + u32::try_from(winner).unwrap_or(0);
    ensure!(
        c,
        got.as_ref().map(|g| g.sign_count) == Some(want_count),
        "the stored counter is not the winner's: {got:?}, want {want_count}"
    );

    let c = "delete";
    ensure!(
        c,
        store.delete(&first.credential_id).await.at(c)?,
        "delete said there was none"
    );
    ensure!(
        c,
        store.get(&first.credential_id).await.at(c)?.is_none(),
        "a deleted credential is still there"
    );
    ensure!(
        c,
        !store.delete(&first.credential_id).await.at(c)?,
        "a second delete said it deleted"
    );
    let listed = store.list_for_user(&alice).await.at(c)?;
    ensure!(
        c,
        listed == vec![second.clone()],
        "after delete the user lists {listed:?}"
    );
    store.insert(&first).await.at(c)?;
    ensure!(
        c,
        store.get(&first.credential_id).await.at(c)?.as_ref() == Some(&first),
        "re-inserting a deleted id failed"
    );
    Ok(())
}

/// The embedded provider's ceremony suite.
///
/// Checks: put and take; a second take gets nothing; an expired value is
/// not given out (the expiry instant itself included); put replaces; of
/// [`CONCURRENCY`] concurrent takes of one key exactly one gets the value;
/// `get_or_insert` keeps the first value, also under concurrency.
pub async fn ceremony_store<S>(store: Arc<S>) -> Result<(), Failure>
where
    S: CeremonyStore + ?Sized,
{
    let run = run_id();
    let key = |name: &str| format!("conformance:{run}:{name}");

    let c = "put_take";
    ensure!(
        c,
        store.take(&key("missing"), T0).await.at(c)?.is_none(),
        "a missing key gave a value"
    );
    store.put(&key("a"), "value-a", T0 + 60_000).await.at(c)?;
    let got = store.take(&key("a"), T0 + 59_999).await.at(c)?;
    ensure!(
        c,
        got.as_deref() == Some("value-a"),
        "take gave {got:?}, want \"value-a\""
    );
    let got = store.take(&key("a"), T0 + 1).await.at(c)?;
    ensure!(c, got.is_none(), "a second take gave {got:?}");

    let c = "expired_gives_nothing";
    store
        .put(&key("old"), "value-old", T0 + 1_000)
        .await
        .at(c)?;
    let got = store.take(&key("old"), T0 + 1_000).await.at(c)?;
    ensure!(
        c,
        got.is_none(),
        "a value taken at its expiry instant gave {got:?}"
    );
    store
        .put(&key("older"), "value-older", T0 + 1_000)
        .await
        .at(c)?;
    let got = store.take(&key("older"), T0 + 10_000).await.at(c)?;
    ensure!(c, got.is_none(), "an expired value gave {got:?}");
    let got = store.take(&key("older"), T0).await.at(c)?;
    ensure!(
        c,
        got.is_none(),
        "an expired value survived its take: {got:?}"
    );

    let c = "put_replaces";
    store.put(&key("b"), "first", T0 + 60_000).await.at(c)?;
    store.put(&key("b"), "second", T0 + 60_000).await.at(c)?;
    let got = store.take(&key("b"), T0).await.at(c)?;
    ensure!(
        c,
        got.as_deref() == Some("second"),
        "take after two puts gave {got:?}"
    );

    let c = "concurrent_takes_one_winner";
    let contested = key("contested");
    store.put(&contested, "prize", T0 + 60_000).await.at(c)?;
    let results = concurrently(c, CONCURRENCY, |_| {
        let store = Arc::clone(&store);
        let contested = contested.clone();
        async move { store.take(&contested, T0).await }
    })
    .await?;
    let got: Vec<&String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok()?.as_ref())
        .collect();
    let errors: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
    ensure!(
        c,
        got.len() == 1 && got.iter().all(|v| v.as_str() == "prize") && errors.is_empty(),
        "{} of {CONCURRENCY} concurrent takes got the value (want 1); errors: {errors:?}",
        got.len()
    );

    let c = "get_or_insert_first_writer_wins";
    let first = store
        .get_or_insert(&key("persistent"), "first")
        .await
        .at(c)?;
    ensure!(
        c,
        first == "first",
        "get_or_insert on a new key gave {first:?}"
    );
    let again = store
        .get_or_insert(&key("persistent"), "second")
        .await
        .at(c)?;
    ensure!(
        c,
        again == "first",
        "get_or_insert on an existing key gave {again:?}"
    );

    let c = "concurrent_get_or_insert_one_value";
    let contested = key("persistent-contested");
    let results = concurrently(c, CONCURRENCY, |i| {
        let store = Arc::clone(&store);
        let contested = contested.clone();
        async move {
            store
                .get_or_insert(&contested, &format!("candidate-{i}"))
                .await
        }
    })
    .await?;
    let values: HashSet<&str> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(String::as_str))
        .collect();
    let errors: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
    ensure!(
        c,
        values.len() == 1 && errors.is_empty(),
        "concurrent get_or_insert gave {values:?}, errors {errors:?}"
    );
    let stored = store.get_or_insert(&contested, "late").await.at(c)?;
    ensure!(
        c,
        values.contains(stored.as_str()) && stored.starts_with("candidate-"),
        "the kept value {stored:?} is not the one every caller got"
    );
    Ok(())
}

/// The id_token replay cache suite.
///
/// Checks: a `jti` is a first use once, then a replay until it expires;
/// other jtis are independent; of [`CONCURRENCY`] concurrent first uses of
/// one `jti` exactly one is true.
pub async fn replay_cache<S>(cache: Arc<S>) -> Result<(), Failure>
where
    S: ReplayCache + ?Sized,
{
    let run = run_id();
    let jti = |name: &str| format!("conformance-{run}-{name}");
    let now = T0 / 1000;

    let c = "first_use_once";
    ensure!(
        c,
        cache.first_use(&jti("a"), now + 300, now).await.at(c)?,
        "a new jti was a replay"
    );
    ensure!(
        c,
        !cache.first_use(&jti("a"), now + 300, now + 1).await.at(c)?,
        "a replayed jti was a first use"
    );
    ensure!(
        c,
        !cache
            .first_use(&jti("a"), now + 300, now + 300)
            .await
            .at(c)?,
        "a replayed jti was a first use at its expiry second"
    );
    ensure!(
        c,
        cache.first_use(&jti("b"), now + 300, now).await.at(c)?,
        "another jti was a replay"
    );

    let c = "forgotten_after_expiry";
    ensure!(
        c,
        cache.first_use(&jti("short"), now + 10, now).await.at(c)?,
        "a new jti was a replay"
    );
    ensure!(
        c,
        cache
            .first_use(&jti("short"), now + 400, now + 11)
            .await
            .at(c)?,
        "an expired jti is still remembered"
    );
    ensure!(
        c,
        !cache
            .first_use(&jti("short"), now + 400, now + 12)
            .await
            .at(c)?,
        "a jti renewed after expiry is not remembered"
    );

    let c = "concurrent_first_use_one_winner";
    let contested = jti("contested");
    let results = concurrently(c, CONCURRENCY, |_| {
        let cache = Arc::clone(&cache);
        let contested = contested.clone();
        async move { cache.first_use(&contested, now + 300, now).await }
    })
    .await?;
    let firsts = results.iter().filter(|r| matches!(r, Ok(true))).count();
    let errors: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
    ensure!(
        c,
        firsts == 1 && errors.is_empty(),
        "{firsts} of {CONCURRENCY} concurrent uses were first uses (want 1); errors: {errors:?}"
    );
    Ok(())
}

/// The revocation store suite. The store must be timed by the system clock
/// (markers are written around now and kept ten minutes).
///
/// Checks: an unknown key is not revoked; a revoked key is, with its time,
/// also among other keys, and the latest time of several keys wins; a
/// second revocation keeps the later time; an empty key list is `None`;
/// of [`CONCURRENCY`] concurrent revocations of distinct keys none is lost.
pub async fn revocation_store<S>(store: Arc<S>) -> Result<(), Failure>
where
    S: RevocationStore + ?Sized,
{
    use passlock_core::clock::Clock as _;
    let run = run_id();
    let key = |name: &str| format!("family:conformance-{run}-{name}");
    let now = passlock_core::clock::SystemClock.now_millis();
    let keep = now + 600_000;

    let c = "unknown_key_is_not_revoked";
    ensure!(
        c,
        store.latest(&[key("none")]).await.at(c)?.is_none(),
        "an unknown key is revoked"
    );
    ensure!(
        c,
        store.latest(&[]).await.at(c)?.is_none(),
        "no keys are revoked"
    );

    let c = "revoked_key_is_seen";
    store.revoke(&key("a"), now, keep).await.at(c)?;
    let got = store.latest(&[key("a")]).await.at(c)?;
    ensure!(c, got == Some(now), "expected Some({now}), got {got:?}");
    let got = store.latest(&[key("none"), key("a")]).await.at(c)?;
    ensure!(c, got == Some(now), "among other keys: got {got:?}");

    let c = "latest_time_wins";
    store.revoke(&key("b"), now + 7, keep).await.at(c)?;
    let got = store.latest(&[key("a"), key("b")]).await.at(c)?;
    ensure!(
        c,
        got == Some(now + 7),
        "expected the later time, got {got:?}"
    );
    store.revoke(&key("a"), now - 5, keep).await.at(c)?;
    let got = store.latest(&[key("a")]).await.at(c)?;
    ensure!(
        c,
        got == Some(now),
        "an earlier revocation replaced a later one: {got:?}"
    );
    store.revoke(&key("a"), now + 9, keep + 9).await.at(c)?;
    let got = store.latest(&[key("a")]).await.at(c)?;
    ensure!(
        c,
        got == Some(now + 9),
        "a later revocation was ignored: {got:?}"
    );

    let c = "concurrent_revocations_are_kept";
    let mut tasks = JoinSet::new();
    for i in 0..CONCURRENCY {
        let store = Arc::clone(&store);
        let k = key(&format!("c{i}"));
        tasks.spawn(async move { store.revoke(&k, now, keep).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| Failure::new(c, format!("a task panicked: {e}")))?
            .at(c)?;
    }
    for i in 0..CONCURRENCY {
        let got = store.latest(&[key(&format!("c{i}"))]).await.at(c)?;
        ensure!(c, got == Some(now), "revocation {i} was lost: {got:?}");
    }
    Ok(())
}

/// The contract of [`RecoveryChallenges`](passlock_core::store::RecoveryChallenges):
/// attempts counted atomically up to the limit (also under concurrency),
/// expiry, single use ([`mark_used`](passlock_core::store::RecoveryChallenges::mark_used)
/// and [`take_used`](passlock_core::store::RecoveryChallenges::take_used) succeed
/// exactly once among concurrent calls), duplicate ids refused, deletion.
pub async fn recovery_challenges<S>(store: Arc<S>) -> Result<(), Failure>
where
    S: passlock_core::store::RecoveryChallenges + ?Sized,
{
    use passlock_core::clock::Clock as _;
    use passlock_core::id::ChallengeId;
    use passlock_core::store::{Attempt, NewChallenge};
    let run = run_id();
    let id = |name: &str| {
        ChallengeId::new(format!("conf-{run}-{name}")).unwrap_or_else(|_| unreachable!())
    };
    let now = passlock_core::clock::SystemClock.now_millis();
    let later = now + 600_000;
    let new = |name: &str, user: Option<&str>, expires_at: UnixMillis, max: u32| {
        NewChallenge::new(
            id(name),
            format!("addr-{run}"),
            user.map(str::to_owned),
            format!("hash-{name}"),
            now - 1_000,
            expires_at,
            max,
        )
    };

    let c = "unknown_challenge";
    let got = store.attempt(&id("none"), now).await.at(c)?;
    ensure!(c, got == Attempt::Unknown, "got {got:?}");
    ensure!(
        c,
        !store.mark_used(&id("none"), now, later).await.at(c)?,
        "marked an unknown challenge"
    );
    ensure!(
        c,
        !store.take_used(&id("none"), now).await.at(c)?,
        "took an unknown challenge"
    );

    let c = "attempts_are_counted_up_to_the_limit";
    store.create(&new("a", Some("7"), later, 3)).await.at(c)?;
    for i in 0..3 {
        let got = store.attempt(&id("a"), now).await.at(c)?;
        let want = Attempt::Open {
            code_hash: "hash-a".to_owned(),
            user: Some("7".to_owned()),
            address: format!("addr-{run}"),
        };
        ensure!(c, got == want, "attempt {i}: got {got:?}");
    }
    let got = store.attempt(&id("a"), now).await.at(c)?;
    ensure!(c, got == Attempt::Exhausted, "a fourth attempt: {got:?}");

    let c = "duplicate_id_is_a_conflict";
    let dup = store.create(&new("a", None, later, 3)).await;
    ensure!(c, matches!(dup, Err(StoreError::Conflict)), "got {dup:?}");

    let c = "an_address_without_account_is_stored_without_user";
    store.create(&new("decoy", None, later, 3)).await.at(c)?;
    let got = store.attempt(&id("decoy"), now).await.at(c)?;
    ensure!(
        c,
        matches!(got, Attempt::Open { user: None, .. }),
        "got {got:?}"
    );

    let c = "expired_challenge_is_refused";
    store
        .create(&new("old", Some("7"), now - 1, 3))
        .await
        .at(c)?;
    let got = store.attempt(&id("old"), now).await.at(c)?;
    ensure!(c, got == Attempt::Expired, "got {got:?}");
    ensure!(
        c,
        !store.mark_used(&id("old"), now, later).await.at(c)?,
        "marked an expired challenge"
    );

    let c = "concurrent_attempts_never_exceed_the_limit";
    store
        .create(&new("race", Some("7"), later, 5))
        .await
        .at(c)?;
    let mut tasks = JoinSet::new();
    for _ in 0..CONCURRENCY {
        let store = Arc::clone(&store);
        let cid = id("race");
        tasks.spawn(async move { store.attempt(&cid, now).await });
    }
    let mut open = 0;
    while let Some(done) = tasks.join_next().await {
        let got = done
            .map_err(|e| Failure::new(c, format!("a task panicked: {e}")))?
            .at(c)?;
        match got {
            Attempt::Open { .. } => open += 1,
            Attempt::Exhausted => {}
            other => return Err(Failure::new(c, format!("unexpected {other:?}"))),
        }
    }
    ensure!(c, open == 5, "{open} attempts passed a limit of 5");

    let c = "used_once_among_concurrent_calls";
    store
        .create(&new("use", Some("7"), now + 60_000, 5))
        .await
        .at(c)?;
    let mut tasks = JoinSet::new();
    for _ in 0..CONCURRENCY {
        let store = Arc::clone(&store);
        let cid = id("use");
        tasks.spawn(async move { store.mark_used(&cid, now, later).await });
    }
    let mut won = 0;
    while let Some(done) = tasks.join_next().await {
        if done
            .map_err(|e| Failure::new(c, format!("a task panicked: {e}")))?
            .at(c)?
        {
            won += 1;
        }
    }
    ensure!(c, won == 1, "{won} calls marked one challenge used");
    let got = store.attempt(&id("use"), now).await.at(c)?;
    ensure!(c, got == Attempt::Used, "a used challenge answered {got:?}");
    // Kept until `keep_until`, past the code's own expiry.
    let got = store.attempt(&id("use"), now + 120_000).await.at(c)?;
    ensure!(c, got == Attempt::Used, "a used challenge is kept: {got:?}");

    let c = "taken_once_among_concurrent_calls";
    ensure!(
        c,
        !store.take_used(&id("decoy"), now).await.at(c)?,
        "took an unused challenge"
    );
    let mut tasks = JoinSet::new();
    for _ in 0..CONCURRENCY {
        let store = Arc::clone(&store);
        let cid = id("use");
        tasks.spawn(async move { store.take_used(&cid, now + 120_000).await });
    }
    let mut won = 0;
    while let Some(done) = tasks.join_next().await {
        if done
            .map_err(|e| Failure::new(c, format!("a task panicked: {e}")))?
            .at(c)?
        {
            won += 1;
        }
    }
    ensure!(c, won == 1, "{won} calls took one challenge");
    let got = store.attempt(&id("use"), now).await.at(c)?;
    ensure!(
        c,
        got == Attempt::Unknown,
        "a taken challenge answered {got:?}"
    );

    let c = "take_after_keep_until_fails";
    store
        .create(&new("late", Some("7"), later, 5))
        .await
        .at(c)?;
    ensure!(
        c,
        store.mark_used(&id("late"), now, now + 10).await.at(c)?,
        "not marked"
    );
    ensure!(
        c,
        !store.take_used(&id("late"), now + 10).await.at(c)?,
        "taken after keep_until"
    );

    let c = "delete";
    ensure!(
        c,
        store.delete(&id("decoy")).await.at(c)?,
        "delete found nothing"
    );
    ensure!(c, !store.delete(&id("decoy")).await.at(c)?, "deleted twice");
    let got = store.attempt(&id("decoy"), now).await.at(c)?;
    ensure!(
        c,
        got == Attempt::Unknown,
        "a deleted challenge answered {got:?}"
    );
    Ok(())
}
