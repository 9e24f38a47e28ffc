//! The embedded provider's storage moved to [`crate::store`]
//! (`passlock_core::store::{CredentialStore, CeremonyStore, ...}`); this
//! module keeps the old paths working.

#[doc(no_inline)]
pub use crate::store::{
    CeremonyStore, CredentialStore, CredentialUse, MemoryCeremonyStore, MemoryCredentialStore,
    StoredCredential,
};
