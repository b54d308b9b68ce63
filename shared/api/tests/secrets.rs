//! Sealed secrets: they open with the store's own secret, and only with it.

use std::sync::Arc;

async fn app(dir: &std::path::Path) -> Arc<linkcrm_api::App> {
    let store: linkcrm_storage::DynStore =
        Arc::new(linkcrm_storage::embedded::EmbeddedStore::open(dir.join("s.redb")).unwrap());
    linkcrm_api::app(store, linkcrm_api::Config::default()).await.unwrap()
}

#[tokio::test]
async fn sealed_passwords_open_only_with_their_store_secret() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (app_a, app_b) = (app(a.path()).await, app(b.path()).await);
    let sealed = app_a.seal("hunter2 ✓");
    assert!(!sealed.contains("hunter2"));
    assert_ne!(sealed, app_a.seal("hunter2 ✓"), "a fresh nonce each time");
    assert_eq!(app_a.open_sealed(&sealed).as_deref(), Some("hunter2 ✓"));
    assert_eq!(app_b.open_sealed(&sealed), None, "another store's secret cannot open it");
    let mut tampered = sealed.clone();
    tampered.replace_range(tampered.len() - 2.., "00");
    assert_eq!(app_a.open_sealed(&tampered), None, "tampering is detected");
    assert_eq!(app_a.open_sealed("v2.00.00"), None);
}
