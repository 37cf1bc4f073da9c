//! Handlers in modules, with every visibility, docs, `#[allow]` and
//! `#[cfg]`, used from outside the module.

#![deny(missing_docs)]

use std::sync::Arc;

use shardbus::{Handler, TypeMux};

/// Events and their handlers.
pub mod events {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use shardbus::{State, handler};

    /// A member joined.
    pub struct MemberAdd;

    /// Counts joins.
    ///
    /// A second paragraph.
    #[handler]
    #[allow(clippy::unused_async, unused_variables)]
    pub async fn count_joins(event: Arc<MemberAdd>, State(n): State<Arc<AtomicUsize>>) {
        let unused = ();
        n.fetch_add(1, Ordering::SeqCst);
    }

    /// Crate-visible.
    #[handler(name = "crate_only")]
    pub(crate) async fn crate_only(_event: Arc<MemberAdd>) {}

    #[handler]
    async fn private(_event: Arc<MemberAdd>) {}

    /// Returns the private handler.
    pub fn private_handler() -> impl shardbus::Handler<MemberAdd> {
        private
    }

    /// Never compiled: `#[cfg]` removes the struct and its impls too.
    #[handler]
    #[cfg(any())]
    pub async fn compiled_out(_event: Arc<MemberAdd>) {
        this_does_not_exist();
    }

    /// A raw identifier.
    #[handler]
    pub async fn r#type(_event: Arc<MemberAdd>) {}

    pub(super) mod nested {
        use std::sync::Arc;

        /// In a nested module, visible to the grandparent.
        #[shardbus::handler]
        pub(in crate::events) async fn deep(_event: Arc<super::MemberAdd>) {}

        /// Returns `deep`.
        pub fn deep_handler() -> impl shardbus::Handler<super::MemberAdd> {
            deep
        }
    }

    /// Returns `nested::deep` from the module it is visible in.
    pub fn deep() -> impl shardbus::Handler<MemberAdd> {
        nested::deep
    }
}

fn main() {
    use events::*;

    assert_eq!(
        Handler::<MemberAdd, _>::name(&count_joins),
        format!("{}::events::count_joins", module_path!())
    );
    assert_eq!(Handler::<MemberAdd>::name(&crate_only), "crate_only");
    assert_eq!(
        private_handler().name(),
        format!("{}::events::private", module_path!())
    );
    assert_eq!(
        Handler::<MemberAdd>::name(&r#type),
        format!("{}::events::type", module_path!())
    );
    assert_eq!(
        deep().name(),
        format!("{}::events::nested::deep", module_path!())
    );
    assert_eq!(
        nested::deep_handler().name(),
        format!("{}::events::nested::deep", module_path!())
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bus = TypeMux::new().with_state(n.clone());
        let _count = bus.add_handler(count_joins);
        let _crate_only = bus.add_handler(crate_only);
        assert_eq!(bus.post(MemberAdd).await.unwrap(), 2);
        while n.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
    });
}
