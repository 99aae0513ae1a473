//! Other instances' catalog changes: LISTEN on a dedicated connection, and a version check
//! every [`WATCH_POLL`] (and after reconnecting) in case a notification was lost.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use super::catalog::load;
use super::{Applied, CHANNEL, WATCH_POLL};
use crate::store::ChangeHook;

/// Listens for catalog changes of other instances and hands each new state to `on_change`.
pub(super) async fn watch_loop(
    config: tokio_postgres::Config,
    pool: Pool,
    version: Arc<Applied>,
    target: String,
    on_change: ChangeHook,
) {
    let mut warned = false;
    loop {
        let (client, mut conn) = match config.connect(NoTls).await {
            Ok(c) => c,
            Err(e) => {
                if !warned {
                    tracing::warn!("tag424 serve: {target}: cannot listen for other instances' changes ({}); retrying every second", super::describe(&e));
                    warned = true;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let (ntx, mut nrx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
            while let Some(m) = messages.next().await {
                match m {
                    Ok(AsyncMessage::Notification(_)) => {
                        if ntx.send(()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        if client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .is_ok()
        {
            if warned {
                tracing::info!(
                    "tag424 serve: {target}: listening for other instances' changes again"
                );
                warned = false;
            }
            // Compare at once (changes made while not listening), then on each notification
            // and every WATCH_POLL.
            loop {
                let v: i64 = match client
                    .query_one("SELECT version FROM catalog_version", &[])
                    .await
                {
                    Ok(r) => r.get(0),
                    Err(_) => break,
                };
                if v != version.get() {
                    match load(&pool, &target).await {
                        Ok((loaded, lv)) => version.reload(lv, || on_change(loaded)).await,
                        Err(e) => {
                            tracing::warn!("tag424 serve: {target}: reloading the catalog: {e}")
                        }
                    }
                }
                tokio::select! {
                    n = nrx.recv() => {
                        if n.is_none() {
                            break;
                        }
                        while nrx.try_recv().is_ok() {}
                    }
                    _ = tokio::time::sleep(WATCH_POLL) => {}
                }
            }
        }
        driver.abort();
        drop(client);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
