//! The hot path's Redis connections: one per single-threaded event loop (each actix worker
//! runs one), reused by every request of that loop; the shared connection everywhere else.

use sigillo::kv::Kv;
use sigillo::kv::KvConn;
use tokio::runtime::Builder;

use crate::support::{random_suffix, test_config};

/// Redis's own name for the connection a command went over.
async fn client_id(mut conn: KvConn) -> i64 {
    redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut conn)
        .await
        .expect("CLIENT ID")
}

#[test]
fn loop_connections_belong_to_one_event_loop() {
    let config = test_config(&random_suffix());
    let multi = Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let kv: Kv = multi
        .block_on(Kv::connect(&config.redis))
        .expect("redis connects");
    let shared = multi.block_on(client_id(kv.conn()));
    let from_multi = multi.block_on(async { client_id(kv.loop_conn().await.expect("conn")).await });
    assert_eq!(
        from_multi, shared,
        "a multi-threaded runtime uses the shared connection"
    );

    let one_loop = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (first, again) = one_loop.block_on(async {
        let first = client_id(kv.loop_conn().await.expect("conn")).await;
        let again = client_id(kv.loop_conn().await.expect("conn")).await;
        (first, again)
    });
    assert_ne!(
        first, shared,
        "a single-threaded loop has a connection of its own"
    );
    assert_eq!(first, again, "and reuses it");

    let clone = kv.clone();
    let via_clone =
        one_loop.block_on(async { client_id(clone.loop_conn().await.expect("conn")).await });
    assert_eq!(
        via_clone, first,
        "clones of a Kv share the loop's connection"
    );

    let other_loop = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let other = other_loop.block_on(async { client_id(kv.loop_conn().await.expect("conn")).await });
    assert_ne!(
        other, first,
        "another loop, even on the same thread, gets its own"
    );
    assert_ne!(other, shared);
}
