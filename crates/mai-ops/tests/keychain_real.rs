//! The real OS keychain (Secret Service over D-Bus). What is expected depends on the
//! environment tests/run-keyring-tests.sh sets up, so every case asserts a real outcome:
//! - `MAI_KEYCHAIN_EXPECT=unlocked` (gnome-keyring unlocked in this D-Bus session): set,
//!   replace, list masked, delete;
//! - `locked` (daemon running, login keyring locked): a clear "locked" error, no crash;
//! - `absent` (default without a session bus): a clear "not available" error.

use mai_ops::keys::{KeyError, Keychain, SecretKind};

fn expectation() -> String {
    std::env::var("MAI_KEYCHAIN_EXPECT").unwrap_or_else(|_| {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some() {
            "unlocked"
        } else {
            "absent"
        }
        .into()
    })
}

#[tokio::test]
async fn real_secret_service_behaves_as_expected() {
    // Called from inside a tokio runtime on purpose: the zbus blocking API must not panic here.
    let client = format!("test-{}", std::process::id());
    let key = "sk-or-v1-5ecre75ecre75ecre75ecre75ecre75ecre75ecre75ecre75ecre75ecre7b0b0";
    match expectation().as_str() {
        "unlocked" => {
            let k = Keychain::secret_service().expect("Secret Service reachable");
            k.set(SecretKind::OpenRouter, &client, key).unwrap();
            assert_eq!(k.get(SecretKind::OpenRouter, &client).unwrap(), key);
            let key2 = key.replace("b0b0", "c1c1");
            k.set(SecretKind::OpenRouter, &client, &key2).unwrap();
            let list = k.list_masked(std::slice::from_ref(&client)).unwrap();
            assert_eq!(list[0].masked.as_deref(), Some("sk-or-v1-…c1c1"));
            k.delete(SecretKind::OpenRouter, &client).unwrap();
            assert!(matches!(
                k.get(SecretKind::OpenRouter, &client),
                Err(KeyError::Missing { .. })
            ));
            println!("keychain: set/replace/list/delete through the real Secret Service ok");
        }
        "locked" => {
            let e = Keychain::secret_service()
                .and_then(|k| k.set(SecretKind::OpenRouter, &client, key))
                .unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, KeyError::Locked(_)), "{e:?}");
            assert!(msg.contains("unlock"), "{msg}");
            println!("keychain: locked -> {msg}");
        }
        "absent" => {
            let e = Keychain::secret_service()
                .and_then(|k| k.get(SecretKind::OpenRouter, &client))
                .unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, KeyError::Unavailable(_)), "{e:?}");
            assert!(
                msg.contains("not available") && msg.contains("never stored in plain text"),
                "{msg}"
            );
            println!("keychain: absent -> {msg}");
        }
        other => panic!("MAI_KEYCHAIN_EXPECT={other} is not one of unlocked, locked, absent"),
    }
}
